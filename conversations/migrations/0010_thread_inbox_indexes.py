# The inbox's keyset indexes (conversations.models.Thread.Meta), in a migration of their
# own: built after the copy above has committed.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0009_thread_dedicated_advisor'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='thread',
            name='thread_handler_inbox',
        ),
        migrations.RemoveIndex(
            model_name='thread',
            name='thread_agency_inbox',
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(models.Q(('status', 'closed'), _negated=True), models.Q(('dedicated_advisor__isnull', True), ('dedicated_advisor__lt', models.F('handler')), ('dedicated_advisor__gt', models.F('handler')), _connector='OR')), fields=['handler', 'last_activity_at', 'id'], name='thread_open_handled_for_other'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('status', 'closed'), _negated=True), fields=['dedicated_advisor', 'last_activity_at', 'id'], name='thread_open_by_dedicated'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('handler__isnull', True), models.Q(('status', 'closed'), _negated=True)), fields=['agency', 'last_activity_at', 'id'], name='thread_open_in_pool'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('status', 'closed'), models.Q(('dedicated_advisor__isnull', True), ('dedicated_advisor__lt', models.F('handler')), ('dedicated_advisor__gt', models.F('handler')), _connector='OR')), fields=['handler', 'last_activity_at', 'id'], name='thread_closed_for_other'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('status', 'closed')), fields=['dedicated_advisor', 'last_activity_at', 'id'], name='thread_closed_by_dedicated'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('handler__isnull', True), ('status', 'closed')), fields=['agency', 'last_activity_at', 'id'], name='thread_closed_in_pool'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('status', 'closed')), fields=['agency', 'last_activity_at', 'id'], name='thread_closed_by_agency'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('unread_count__gt', 0), models.Q(('status', 'closed'), _negated=True)), fields=['handler'], include=('unread_count',), name='thread_unread'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(fields=['handler', 'id'], name='thread_handler'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(fields=['dedicated_advisor', 'id'], name='thread_dedicated'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(fields=['agency', 'id'], name='thread_agency'),
        ),
    ]
