# Event, moved from the conversations app with its table and rows (state only), and its
# content type renamed so that permissions and admin history granted on it follow.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def _rename_content_type(apps, from_label, to_label):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    if not ContentType.objects.filter(app_label=to_label, model='event').exists():
        ContentType.objects.filter(app_label=from_label, model='event').update(app_label=to_label)


def content_type_to_events(apps, schema_editor):
    _rename_content_type(apps, 'conversations', 'events')


def content_type_to_conversations(apps, schema_editor):
    _rename_content_type(apps, 'events', 'conversations')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('conversations', '0005_event_leaves_for_events'),
        ('crm', '0003_contact_point_confirmed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Event',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(choices=[('message.created', 'Message created'), ('message.status', 'Message status changed'), ('attachment.updated', 'Attachment downloaded or refused'), ('thread.updated', 'Thread updated'), ('thread.assigned', 'Thread assigned'), ('note.created', 'Note created'), ('consent.changed', 'Consent changed'), ('contact_point.confirmed', 'Contact point confirmed'), ('customer.reassigned', 'Customer reassigned')], max_length=32, verbose_name='type')),
                        ('payload', models.JSONField(default=dict)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='created at')),
                        ('agency', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='events', to='crm.agency')),
                        ('thread', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='events', to='conversations.thread')),
                    ],
                    options={
                        'verbose_name': 'event',
                        'verbose_name_plural': 'events',
                        'db_table': 'conversations_event',
                        'ordering': ['id'],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_events, content_type_to_conversations),
    ]
