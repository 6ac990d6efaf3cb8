# API keys and webhooks, moved from the crm app with their tables and rows (state only),
# and their content types renamed so that permissions and admin history granted on them
# follow.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


MOVED = ('apikey', 'webhookendpoint', 'webhookdelivery', 'webhookcursor')


def _rename_content_types(apps, from_label, to_label):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    for model in MOVED:
        if not ContentType.objects.filter(app_label=to_label, model=model).exists():
            ContentType.objects.filter(app_label=from_label, model=model).update(app_label=to_label)


def content_types_to_integrations(apps, schema_editor):
    _rename_content_types(apps, 'crm', 'integrations')


def content_types_to_crm(apps, schema_editor):
    _rename_content_types(apps, 'integrations', 'crm')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('crm', '0005_integrations_leave_for_integrations'),
        ('events', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='WebhookCursor',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=32, unique=True)),
                        ('last_event_id', models.BigIntegerField(default=0)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'verbose_name': 'webhook cursor',
                        'verbose_name_plural': 'webhook cursors',
                        'db_table': 'crm_webhookcursor',
                    },
                ),
                migrations.CreateModel(
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, verbose_name='name')),
                        ('prefix', models.CharField(max_length=8, unique=True, verbose_name='prefix')),
                        ('hashed_key', models.CharField(max_length=64, verbose_name='hashed key')),
                        ('scopes', models.JSONField(default=list, verbose_name='scopes')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                        ('last_used_at', models.DateTimeField(blank=True, null=True, verbose_name='last used at')),
                        ('revoked_at', models.DateTimeField(blank=True, null=True, verbose_name='revoked at')),
                        ('agency', models.ForeignKey(blank=True, help_text="When set, the key reaches only this agency's customers, advisors and conversations.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='api_keys', to='crm.agency')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'verbose_name_plural': 'API keys',
                        'db_table': 'crm_apikey',
                        'ordering': ['name', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500, verbose_name='URL')),
                        ('secret', models.CharField(help_text='Used to sign each delivery (HMAC-SHA256).', max_length=200, verbose_name='signing secret')),
                        ('event_types', models.JSONField(blank=True, default=list, help_text='Leave empty to receive every event type.', verbose_name='event types')),
                        ('active', models.BooleanField(default=True, verbose_name='active')),
                        ('disabled_reason', models.CharField(blank=True, max_length=500, verbose_name='why it was disabled')),
                        ('failure_count', models.PositiveIntegerField(default=0, verbose_name='consecutive failures')),
                        ('failing_since', models.DateTimeField(blank=True, null=True, verbose_name='failing since')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                        ('agency', models.ForeignKey(blank=True, help_text="When set, only this agency's events are delivered.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='webhook_endpoints', to='crm.agency')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'webhook endpoint',
                        'verbose_name_plural': 'webhook endpoints',
                        'db_table': 'crm_webhookendpoint',
                        'ordering': ['url', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('attempt', models.PositiveSmallIntegerField(default=1, verbose_name='attempt')),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='pending', max_length=16, verbose_name='state')),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='HTTP status')),
                        ('duration_ms', models.PositiveIntegerField(blank=True, null=True, verbose_name='duration (ms)')),
                        ('error', models.CharField(blank=True, max_length=500, verbose_name='error')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                        ('attempted_at', models.DateTimeField(blank=True, null=True, verbose_name='attempted at')),
                        ('next_retry_at', models.DateTimeField(blank=True, null=True, verbose_name='next retry at')),
                        ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='events.event')),
                        ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='integrations.webhookendpoint')),
                    ],
                    options={
                        'verbose_name': 'webhook delivery',
                        'verbose_name_plural': 'webhook deliveries',
                        'db_table': 'crm_webhookdelivery',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['endpoint', '-id'], name='webhook_delivery_endpoint')],
                        'constraints': [models.UniqueConstraint(fields=('endpoint', 'event', 'attempt'), name='webhook_delivery_attempt_unique'), models.CheckConstraint(condition=models.Q(('state__in', ['pending', 'succeeded', 'failed'])), name='webhook_delivery_state_valid')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_integrations, content_types_to_crm),
    ]
