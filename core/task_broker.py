"""django-q2's ORM broker, with its two per-task round trips made one statement each.

The table, the payloads and `enqueue` are django-q2's own: a task is still written in
the caller's transaction, so a committed reply always gets its delivery task and a
rolled-back one never does. What changes, on PostgreSQL only:

- `dequeue` claims up to `Q_CLUSTER["bulk"]` tasks in one `UPDATE … RETURNING`, skipping
  those another cluster is claiming (`FOR UPDATE SKIP LOCKED`), where django-q2 reads
  the tasks and then updates each one in turn;
- `acknowledge` deletes a task with one `DELETE`, where django-q2 goes through the ORM's
  deletion collector and checks the connection's health before each one.

bench/outbound.py measured the ORM broker's dequeue and acknowledgement at about a
third of the cluster's CPU per delivered message. Elsewhere (SQLite) it is django-q2's
broker unchanged.
"""

from datetime import timedelta
from time import sleep

from django.db import InterfaceError, OperationalError, close_old_connections, connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ


def _names(connection) -> tuple[str, ...]:
    """The queue table and its id, key, lock and payload columns, quoted."""
    quote = connection.ops.quote_name
    meta = OrmQ._meta
    return quote(meta.db_table), *(quote(meta.get_field(name).column) for name in ("id", "key", "lock", "payload"))


class OrmBroker(ORM):
    @staticmethod
    def _connection():
        return connections[Conf.ORM]

    def _fast(self) -> bool:
        return self._connection().vendor == "postgresql"

    def dequeue(self):
        if not self._fast():
            return super().dequeue()
        if transaction.get_autocommit(using=Conf.ORM):
            # As django-q2 does, once per poll: drop a connection past its age or broken.
            close_old_connections()
        table, pk, key, lock, payload = _names(self._connection())
        now = timezone.now()
        rows = self._execute(
            f"UPDATE {table} SET {lock} = %s WHERE {pk} IN ("  # noqa: S608 - identifiers from model metadata
            f"SELECT {pk} FROM {table} WHERE {key} = %s AND {lock} < %s ORDER BY {pk} LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) RETURNING {pk}, {payload}",
            [now + timedelta(seconds=Conf.RETRY), self.list_key, now, Conf.BULK],
        )
        if rows:
            return sorted(rows)  # oldest first, as queued
        sleep(Conf.POLL)  # empty queue: spare the CPU, as django-q2 does
        return None

    def delete(self, task_id):
        if not self._fast():
            return super().delete(task_id)
        table, pk, *_ = _names(self._connection())
        return self._execute(f"DELETE FROM {table} WHERE {pk} = %s", [task_id])  # noqa: S608

    def _execute(self, sql: str, params: list):
        """Run one statement; on a connection that turned out to be dead (the database
        restarted), reconnect and run it once more. Running either twice is harmless: a
        second claim finds the tasks already locked, a second delete finds nothing."""
        connection = self._connection()
        for attempt in (1, 2):
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchall() if cursor.description else cursor.rowcount
            except (InterfaceError, OperationalError):
                if attempt == 2 or connection.in_atomic_block:
                    raise
                connection.close()
        raise AssertionError("unreachable")
