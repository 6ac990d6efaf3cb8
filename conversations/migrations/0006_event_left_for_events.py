# Second half of the move to the events app: once nothing points at it, the old model
# leaves the state. Its table stays, now events.Event's.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0005_event_leaves_for_events'),
        ('crm', '0004_webhookdelivery_event_in_events'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Event')],
            database_operations=[],
        ),
    ]
