# The Event model moves to the events app with its table (conversations_event): state
# only, no statement runs and no row moves. Its foreign keys go first, so that the two
# models never both claim the `events` accessor of threads and agencies.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0004_event_contact_point_confirmed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name='event', name='agency'),
                migrations.RemoveField(model_name='event', name='thread'),
            ],
            database_operations=[],
        ),
    ]
