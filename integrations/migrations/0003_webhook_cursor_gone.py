# Webhook deliveries are now written with their event (integrations.services.webhooks_queue):
# the dispatcher that polled the event log is gone, with its cursor, its minutely schedule and
# any run of it still queued (its function no longer exists).

from django.db import migrations
from django_q.signing import BadSignature, SignedPackage

DISPATCH = 'integrations.tasks.webhook_dispatch'


def drop_dispatcher(apps, schema_editor):
    apps.get_model('django_q', 'Schedule').objects.filter(func=DISPATCH).delete()
    OrmQ = apps.get_model('django_q', 'OrmQ')
    for queued in OrmQ.objects.all().iterator():
        try:
            task = SignedPackage.loads(queued.payload)
        except BadSignature:
            continue  # signed with another key: not ours to read
        if isinstance(task, dict) and task.get('func') == DISPATCH:
            OrmQ.objects.filter(pk=queued.pk).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('django_q', '0018_task_success_index'),
        ('integrations', '0002_task_paths_from_crm'),
    ]

    operations = [
        migrations.RunPython(drop_dispatcher, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='WebhookCursor',
        ),
    ]
