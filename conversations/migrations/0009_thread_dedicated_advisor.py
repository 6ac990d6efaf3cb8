# The customer's dedicated advisor copied onto their thread, so that an inbox tab reads one
# table; filled from the customers in one statement.

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_dedicated_advisors(apps, schema_editor):
    Thread = apps.get_model("conversations", "Thread")
    Customer = apps.get_model("crm", "Customer")
    dedicated = Customer.objects.filter(pk=OuterRef("customer_id")).values("dedicated_advisor_id")[:1]
    Thread.objects.filter(customer__isnull=False).update(dedicated_advisor_id=Subquery(dedicated))


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0008_event_payloads_without_text'),
        ('crm', '0005_integrations_leave_for_integrations'),
    ]

    operations = [
        migrations.AddField(
            model_name='thread',
            name='dedicated_advisor',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='crm.advisor'),
        ),
        migrations.RunPython(copy_dedicated_advisors, migrations.RunPython.noop, elidable=True),
    ]
