# Deliveries point at events.Event, the same table as before (conversations_event): the
# foreign key constraint is unchanged, so only the state moves.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0003_contact_point_confirmed'),
        ('events', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='webhookdelivery',
                    name='event',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='events.event'),
                ),
            ],
            database_operations=[],
        ),
    ]
