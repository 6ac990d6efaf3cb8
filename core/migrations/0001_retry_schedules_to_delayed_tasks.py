# Retries (a delivery to Twilio, the check after a call Twilio did not answer, an inbound
# media download, an outgoing webhook) were one-off django-q2 schedules, which django-q2
# keeps forever once run. They are delayed tasks now (core/tasks.py). A retry schedule
# still waiting becomes a delayed task (same function, same argument, same time; an
# overdue one runs at once), and every retry schedule, run or waiting, is deleted.
# Backwards there is nothing to undo: the old code's broker runs a delayed task at its
# time as well.

import ast
import re
from datetime import timedelta

from django.db import migrations
from django.utils import timezone

# The names the retry schedules were given: group and whether results were kept, per kind.
RETRIES = (
    (re.compile(r'message-\d+-(retry|check)-\d+'), 'outbound', False),
    (re.compile(r'attachment-\d+-retry-\d+'), 'media', True),
    (re.compile(r'webhook-delivery-\d+'), 'webhooks', False),
)


def _kind(name):
    for pattern, group, save in RETRIES:
        if pattern.fullmatch(name or ''):
            return group, save
    return None


def to_delayed_tasks(apps, schema_editor):
    from core.tasks import enqueue

    Schedule = apps.get_model('django_q', 'Schedule')
    now = timezone.now()
    done = []
    for schedule in Schedule.objects.filter(schedule_type='O').order_by('next_run', 'pk'):
        kind = _kind(schedule.name)
        if kind is None:
            continue
        group, save = kind
        if schedule.repeats != 0:  # not run yet
            args = ast.literal_eval(schedule.args) if schedule.args else ()
            args = args if isinstance(args, tuple) else (args,)
            delay = max(schedule.next_run - now, timedelta(0)) if schedule.next_run else None
            enqueue(schedule.func, *args, group=group, delay=delay, save=save)
        done.append(schedule.pk)
    Schedule.objects.filter(pk__in=done).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('django_q', '0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more'),
    ]

    operations = [
        migrations.RunPython(to_delayed_tasks, migrations.RunPython.noop),
    ]
