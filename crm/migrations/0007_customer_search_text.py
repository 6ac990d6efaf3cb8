# Search by name, customer number, phone and email at a bank's size: one generated column
# for the words, trigram indexes (pg_trgm) for `icontains`, a pattern index for addresses
# (an exact address, or the start of a phone number). The indexes are PostgreSQL's only.

import django.db.models.functions.text
from django.contrib.postgres.operations import CreateExtension
from django.db import migrations, models

from core.migration_operations import PostgreSQLOnlySQL


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0006_constraints_say_what_to_fix'),
    ]

    operations = [
        CreateExtension('pg_trgm'),
        migrations.AddField(
            model_name='customer',
            name='search_text',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Concat('first_name', models.Value(' '), 'last_name', models.Value(' '), 'customer_number'), output_field=models.CharField(max_length=340)),
        ),
        # The expressions Django's icontains writes: UPPER("column"::text) LIKE UPPER(%s).
        PostgreSQLOnlySQL(
            'CREATE INDEX customer_search_trgm ON crm_customer USING gin (upper(search_text::text) gin_trgm_ops)',
            'DROP INDEX customer_search_trgm',
        ),
        # A finer histogram of the searched words, so that the planner sees a name borne by
        # 0.3 % of customers (3,000 of a million) as such, not as the default 100 rows, and
        # starts from the owner's threads rather than from every customer of that name.
        PostgreSQLOnlySQL(
            'ALTER INDEX customer_search_trgm ALTER COLUMN 1 SET STATISTICS 1000',
            migrations.RunSQL.noop,
        ),
        PostgreSQLOnlySQL(
            'CREATE INDEX contact_point_prospect_name_trgm ON crm_contactpoint '
            'USING gin (upper(display_name::text) gin_trgm_ops) WHERE customer_id IS NULL',
            'DROP INDEX contact_point_prospect_name_trgm',
        ),
        # Addresses are stored normalised (E.164, lower-case email): equality and prefixes
        # (pattern), part of one (trigrams).
        PostgreSQLOnlySQL(
            'CREATE INDEX contact_point_address_pattern ON crm_contactpoint (address varchar_pattern_ops)',
            'DROP INDEX contact_point_address_pattern',
        ),
        PostgreSQLOnlySQL(
            'CREATE INDEX contact_point_address_trgm ON crm_contactpoint USING gin (address gin_trgm_ops)',
            'DROP INDEX contact_point_address_trgm',
        ),
    ]
