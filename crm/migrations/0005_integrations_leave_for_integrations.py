# API keys and webhooks move to the integrations app with their tables (crm_apikey,
# crm_webhookendpoint, crm_webhookdelivery, crm_webhookcursor): state only, no statement
# runs and no row moves. They leave crm's state before integrations takes them, so two
# models never claim the same accessors of agencies.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0004_webhookdelivery_event_in_events'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='apikey',
                    name='agency',
                ),
                migrations.RemoveField(
                    model_name='apikey',
                    name='created_by',
                ),
                migrations.DeleteModel(
                    name='WebhookCursor',
                ),
                migrations.RemoveField(
                    model_name='webhookdelivery',
                    name='endpoint',
                ),
                migrations.RemoveField(
                    model_name='webhookdelivery',
                    name='event',
                ),
                migrations.RemoveField(
                    model_name='webhookendpoint',
                    name='agency',
                ),
                migrations.RemoveField(
                    model_name='webhookendpoint',
                    name='created_by',
                ),
                migrations.DeleteModel(
                    name='ApiKey',
                ),
                migrations.DeleteModel(
                    name='WebhookDelivery',
                ),
                migrations.DeleteModel(
                    name='WebhookEndpoint',
                ),
            ],
            database_operations=[],
        ),
    ]
