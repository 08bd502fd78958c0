"""`field__any=[...]`: the field is one of a list, with the whole list as one parameter.

Unlike `__in`, the SQL has the same shape however many values there are, so a compiled
read (`apps.common.compiled`) takes the list as an argument, and PostgreSQL still uses
the field's index (`= ANY(array)`). SQLite (the embedded mode) has no arrays: there the
list goes as JSON text, read back with `json_each`.
"""

import json
import sqlite3
from typing import cast

from django.db.models import Field, ForeignKey, Lookup


class ValueList(list):
    """The values of an `__any` lookup, as prepared for the database."""


sqlite3.register_adapter(ValueList, lambda values: json.dumps(values))


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        field = self.lhs.output_field
        return ("%s", [ValueList(field.get_db_prep_value(item, connection) for item in value)])

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "postgresql":
            # A plain list: psycopg sends it as an array.
            return f"{lhs} = ANY({rhs})", [
                *lhs_params,
                *(list(cast("list", v)) for v in rhs_params),
            ]
        return f"{lhs} IN (SELECT value FROM json_each({rhs}))", [*lhs_params, *rhs_params]


Field.register_lookup(AnyOf)
# A relation has lookups of its own; `project_id__any` needs registering there too.
ForeignKey.register_lookup(AnyOf)
