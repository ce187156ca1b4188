/*-------------------------------------------------------------------------
 * policycopy.c
 *		The consent policy event trigger's catalog work, without parsing.
 *
 *		The event trigger runs as the extension's owner (a superuser) for any
 *		table owner's DDL.  A policy's expression is written by a table owner
 *		(or by anyone with TEMP: a temporary table's policy); turning it into
 *		text and running CREATE POLICY ... USING (<text>) re-parses it, and
 *		parsing runs user code (a domain's CHECK on a literal, for one) with
 *		the superuser's rights.  So the two things the trigger does to
 *		policies are done here on the stored node trees instead:
 *		- a permissive customer_vault_consent policy (as Citus re-creates it
 *		  on shards) is made restrictive by flipping pg_policy.polpermissive;
 *		- a new partition or child gets its ancestor's consent policy as a
 *		  copy of the stored expressions, with the ancestor's attribute
 *		  numbers mapped onto the child's (as PostgreSQL maps a partitioned
 *		  table's expressions onto a partition).
 *		No expression is parsed, planned or evaluated here.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/attmap.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_type.h"
#include "nodes/nodes.h"
#include "rewrite/rewriteManip.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#define CV_CONSENT_POLICY	"customer_vault_consent"

PG_FUNCTION_INFO_V1(cv_consent_policy_restrictive);
PG_FUNCTION_INFO_V1(cv_copy_consent_policy);

/* a copy of the customer_vault_consent policy tuple of a table, or NULL */
static HeapTuple
consent_policy_tuple(Relation pg_policy_rel, Oid relid)
{
	ScanKeyData skey[2];
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	result = NULL;

	ScanKeyInit(&skey[0], Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&skey[1], Anum_pg_policy_polname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(CV_CONSENT_POLICY));
	scan = systable_beginscan(pg_policy_rel, PolicyPolrelidPolnameIndexId, true, NULL, 2, skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		result = heap_copytuple(tup);
	systable_endscan(scan);
	return result;
}

/*
 * customer_vault._consent_policy_restrictive(tbl regclass): makes the
 * table's customer_vault_consent policy restrictive (the same command, roles
 * and expressions) if it is permissive; whether it changed anything.
 */
Datum
cv_consent_policy_restrictive(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	Relation	pg_policy_rel;
	HeapTuple	tup;
	bool		changed = false;

	/* CREATE/ALTER POLICY hold this lock already; a dropped table: nothing */
	rel = try_relation_open(relid, AccessExclusiveLock);
	if (rel == NULL)
		PG_RETURN_BOOL(false);
	pg_policy_rel = table_open(PolicyRelationId, RowExclusiveLock);
	tup = consent_policy_tuple(pg_policy_rel, relid);
	if (tup != NULL && ((Form_pg_policy) GETSTRUCT(tup))->polpermissive)
	{
		((Form_pg_policy) GETSTRUCT(tup))->polpermissive = false;
		CatalogTupleUpdate(pg_policy_rel, &tup->t_self, tup);
		InvokeObjectPostAlterHook(PolicyRelationId, ((Form_pg_policy) GETSTRUCT(tup))->oid, 0);
		CacheInvalidateRelcache(rel);
		changed = true;
	}
	table_close(pg_policy_rel, RowExclusiveLock);
	relation_close(rel, NoLock);
	if (changed)
		CommandCounterIncrement();
	PG_RETURN_BOOL(changed);
}

/* a stored policy expression of the ancestor as the child's (NULL stays NULL) */
static char *
map_policy_expr(HeapTuple tup, Relation pg_policy_rel, int attnum, AttrMap *map, Oid child_rowtype,
				Oid child_relid, const ObjectAddress *myself)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, RelationGetDescr(pg_policy_rel), &isnull);
	Node	   *expr;
	bool		found_whole_row;

	if (isnull)
		return NULL;
	expr = (Node *) stringToNode(TextDatumGetCString(d));
	expr = map_variable_attnos(expr, 1, 0, map, child_rowtype, &found_whole_row);
	/* as CreatePolicy records them: the objects the expression uses, the child's columns */
	recordDependencyOnSingleRelExpr(myself, expr, child_relid, DEPENDENCY_NORMAL,
									DEPENDENCY_NORMAL, false);
	return nodeToString(expr);
}

/*
 * customer_vault._copy_consent_policy(source regclass, child regclass): gives
 * child (a partition or inheritance child of source, at any depth) a copy of
 * source's customer_vault_consent policy, unless child has one already;
 * whether it made one.
 */
Datum
cv_copy_consent_policy(PG_FUNCTION_ARGS)
{
	Oid			src_relid = PG_GETARG_OID(0);
	Oid			child_relid = PG_GETARG_OID(1);
	Relation	src;
	Relation	child;
	Relation	pg_policy_rel;
	HeapTuple	src_tup;
	HeapTuple	have;
	HeapTuple	newtup;
	Form_pg_policy sform;
	AttrMap    *map;
	Datum		values[Natts_pg_policy];
	bool		nulls[Natts_pg_policy];
	bool		isnull;
	Datum		roles;
	ArrayType  *role_arr;
	Datum	   *role_oids;
	int			nroles;
	int			i;
	Oid			policy_id;
	ObjectAddress myself;
	ObjectAddress target;
	char	   *qual;
	char	   *withcheck;
	NameData	polname;

	if (src_relid == child_relid)
		PG_RETURN_BOOL(false);
	child = relation_open(child_relid, AccessExclusiveLock);
	src = relation_open(src_relid, AccessShareLock);
	if (child->rd_rel->relkind != RELKIND_RELATION &&
		child->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot be put under a consent policy", RelationGetRelationName(child)),
				 errdetail("Only ordinary and partitioned tables have row-level security; a partition or child of a table under a consent policy must be one.")));
	pg_policy_rel = table_open(PolicyRelationId, RowExclusiveLock);
	have = consent_policy_tuple(pg_policy_rel, child_relid);
	src_tup = consent_policy_tuple(pg_policy_rel, src_relid);
	if (have != NULL || src_tup == NULL)
	{
		table_close(pg_policy_rel, RowExclusiveLock);
		relation_close(src, AccessShareLock);
		relation_close(child, NoLock);
		PG_RETURN_BOOL(false);
	}
	sform = (Form_pg_policy) GETSTRUCT(src_tup);

	/* the ancestor's attribute numbers -> the child's (every column is there: inheritance requires it) */
	map = CV_BUILD_ATTRMAP_BY_NAME(RelationGetDescr(child), RelationGetDescr(src));

	policy_id = GetNewOidWithIndex(pg_policy_rel, PolicyOidIndexId, Anum_pg_policy_oid);
	myself.classId = PolicyRelationId;
	myself.objectId = policy_id;
	myself.objectSubId = 0;

	memset(nulls, false, sizeof(nulls));
	namestrcpy(&polname, CV_CONSENT_POLICY);
	values[Anum_pg_policy_oid - 1] = ObjectIdGetDatum(policy_id);
	values[Anum_pg_policy_polname - 1] = NameGetDatum(&polname);
	values[Anum_pg_policy_polrelid - 1] = ObjectIdGetDatum(child_relid);
	values[Anum_pg_policy_polcmd - 1] = CharGetDatum(sform->polcmd);
	values[Anum_pg_policy_polpermissive - 1] = BoolGetDatum(sform->polpermissive);
	roles = heap_getattr(src_tup, Anum_pg_policy_polroles, RelationGetDescr(pg_policy_rel), &isnull);
	if (isnull)
		elog(ERROR, "policy %u has no roles", sform->oid);
	role_arr = DatumGetArrayTypePCopy(roles);
	values[Anum_pg_policy_polroles - 1] = PointerGetDatum(role_arr);

	qual = map_policy_expr(src_tup, pg_policy_rel, Anum_pg_policy_polqual, map,
						   RelationGetForm(child)->reltype, child_relid, &myself);
	withcheck = map_policy_expr(src_tup, pg_policy_rel, Anum_pg_policy_polwithcheck, map,
								RelationGetForm(child)->reltype, child_relid, &myself);
	if (qual != NULL)
		values[Anum_pg_policy_polqual - 1] = CStringGetTextDatum(qual);
	else
		nulls[Anum_pg_policy_polqual - 1] = true;
	if (withcheck != NULL)
		values[Anum_pg_policy_polwithcheck - 1] = CStringGetTextDatum(withcheck);
	else
		nulls[Anum_pg_policy_polwithcheck - 1] = true;

	newtup = heap_form_tuple(RelationGetDescr(pg_policy_rel), values, nulls);
	CatalogTupleInsert(pg_policy_rel, newtup);

	/* the dependencies CreatePolicy records: the table, the roles (the expressions' above) */
	target.classId = RelationRelationId;
	target.objectId = child_relid;
	target.objectSubId = 0;
	recordDependencyOn(&myself, &target, DEPENDENCY_AUTO);
	deconstruct_array(role_arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &role_oids, NULL, &nroles);
	target.classId = AuthIdRelationId;
	for (i = 0; i < nroles; i++)
	{
		target.objectId = DatumGetObjectId(role_oids[i]);
		if (target.objectId != ACL_ID_PUBLIC)
			recordSharedDependencyOn(&myself, &target, SHARED_DEPENDENCY_POLICY);
	}
	InvokeObjectPostCreateHook(PolicyRelationId, policy_id, 0);
	CacheInvalidateRelcache(child);

	table_close(pg_policy_rel, RowExclusiveLock);
	relation_close(src, AccessShareLock);
	relation_close(child, NoLock);
	CommandCounterIncrement();
	PG_RETURN_BOOL(true);
}
