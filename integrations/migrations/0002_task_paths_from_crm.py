# The webhook tasks moved from crm.tasks to integrations.tasks. django-q2 stores a task's
# dotted path: the recurring dispatch schedule, retries scheduled for later, and deliveries
# still waiting in the queue (signed payloads) are pointed at the new module, so that none
# fails on an import of the old one after the upgrade.

from django.db import migrations
from django_q.signing import BadSignature, SignedPackage

TASKS = ('webhook_dispatch', 'webhook_deliver')


def _repoint(apps, old, new):
    paths = {f'{old}.{name}': f'{new}.{name}' for name in TASKS}
    Schedule = apps.get_model('django_q', 'Schedule')
    for old_path, new_path in paths.items():
        Schedule.objects.filter(func=old_path).update(func=new_path)
    OrmQ = apps.get_model('django_q', 'OrmQ')
    for queued in OrmQ.objects.all().iterator():
        try:
            task = SignedPackage.loads(queued.payload)
        except BadSignature:
            continue  # signed with another key: not ours to read
        if isinstance(task, dict) and task.get('func') in paths:
            task['func'] = paths[task['func']]
            OrmQ.objects.filter(pk=queued.pk).update(payload=SignedPackage.dumps(task))


def to_integrations(apps, schema_editor):
    _repoint(apps, 'crm.tasks', 'integrations.tasks')


def to_crm(apps, schema_editor):
    _repoint(apps, 'integrations.tasks', 'crm.tasks')


class Migration(migrations.Migration):

    dependencies = [
        ('django_q', '0018_task_success_index'),
        ('integrations', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(to_integrations, to_crm),
    ]
