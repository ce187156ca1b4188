/*-------------------------------------------------------------------------
 * labels.c
 *		The "customer_vault" security label provider: PII classification of
 *		columns, read back by the inventory and the compliance report.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "commands/seclabel.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

static const char *const cv_labels[] = {
	"pii", "pii:contact", "pii:special", "pii:financial", NULL
};

/* the current role may label the columns of relation relid */
static void
cv_label_check_rights(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;
	Oid			admin;

	if (superuser())
		return;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (has_privs_of_role(GetUserId(), owner))
		return;
	admin = get_role_oid("customer_vault_admin", true);
	if (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to label columns of table %s", get_rel_name(relid)),
			 errdetail("Only the table's owner, customer_vault_admin or a superuser may set customer_vault labels.")));
}

/* accept only the known PII labels, and only on table columns */
static void
cv_label_check(const ObjectAddress *object, const char *seclabel)
{
	int			i;

	if (object->classId != RelationRelationId || object->objectSubId == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("customer_vault labels apply only to table columns"),
				 errhint("Use SECURITY LABEL FOR customer_vault ON COLUMN table.column IS 'pii'.")));

	/*
	 * Only the table's owner (a member of the owning role), the admin role or
	 * a superuser classifies its columns, removals included.  PostgreSQL
	 * checks ownership before calling the provider too; this holds whatever
	 * path reaches the provider.
	 */
	cv_label_check_rights(object->objectId);

	/* the erasure plans of every session read the labels (forget.c) */
	CvErasureLabelsChanged();

	if (seclabel == NULL)
		return;					/* removing a label is always allowed */

	switch (get_rel_relkind(object->objectId))
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_FOREIGN_TABLE:
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("customer_vault labels apply only to columns of tables")));
	}

	for (i = 0; cv_labels[i] != NULL; i++)
		if (strcmp(seclabel, cv_labels[i]) == 0)
			return;

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid customer_vault security label \"%s\"", seclabel),
			 errhint("Valid labels are 'pii', 'pii:contact', 'pii:special' and 'pii:financial'.")));
}

/* register the provider */
void
LabelsInit(void)
{
	register_label_provider("customer_vault", cv_label_check);
}
