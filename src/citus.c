/*-------------------------------------------------------------------------
 * citus.c
 *		What customer_vault needs to know about Citus, without linking to
 *		it: where the rows of one of its own tables are on this node.
 *
 * customer_vault.citus_setup() makes the key and consent tables Citus
 * reference tables, so that every node (coordinator and workers) holds a
 * copy and can open values and answer consent checks from local data: a
 * policy function or decrypt() evaluated on a worker cannot run a
 * distributed query.  Citus keeps a reference table's rows in a shard
 * relation named <table>_<shardid> (its indexes <index>_<shardid>) on every
 * node with a placement; the table of the original name is then an empty
 * shell (or, on the coordinator, holds the rows from before the conversion
 * until they are truncated).  The C code that reads these tables directly
 * (keys.c, consent.c, scache.c) asks here for the relation to read.
 *
 * The test is made from pg_dist_shard (a table Citus keeps on every node
 * with metadata): a table with exactly one shard and a local relation of
 * the shard's name is read through that relation.  Without Citus, or for a
 * table Citus does not know, the table itself is read.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* the relation of a name in a namespace, or InvalidOid */
static Oid
cv_citus_relid(const char *name, Oid nsp)
{
	return get_relname_relid(name, nsp);
}

/*
 * The id of relid's only shard in pg_dist_shard: 0 when Citus is not
 * installed in this database or does not know relid; an error when relid
 * has several shards (a distributed table: not one of ours).
 */
static int64
cv_citus_only_shard(Oid relid)
{
	Oid			dist_shard = cv_citus_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	Oid			dist_shard_idx;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	int64		shardid = 0;
	int			n = 0;

	if (!OidIsValid(dist_shard))
		return 0;
	dist_shard_idx = cv_citus_relid("pg_dist_shard_logical_relid_index", PG_CATALOG_NAMESPACE);
	rel = table_open(dist_shard, AccessShareLock);
	/* pg_dist_shard: logicalrelid regclass, shardid bigint, ... */
	if (RelationGetDescr(rel)->natts < 2 ||
		TupleDescAttr(RelationGetDescr(rel), 0)->atttypid != REGCLASSOID ||
		TupleDescAttr(RelationGetDescr(rel), 1)->atttypid != INT8OID)
		elog(ERROR, "pg_dist_shard has an unexpected layout");
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, dist_shard_idx, OidIsValid(dist_shard_idx), NULL, 1, &skey);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 2, RelationGetDescr(rel), &isnull);

		if (!isnull)
			shardid = DatumGetInt64(d);
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (n > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" of customer_vault is a distributed Citus table", get_rel_name(relid)),
				 errhint("Run SELECT customer_vault.citus_setup(), which makes the extension's tables reference tables.")));
	return n == 1 ? shardid : 0;
}

/* the name "<name>_<shardid>" that Citus gives a shard relation or index */
static Oid
cv_citus_shard_relid(Oid relid, int64 shardid)
{
	char		name[NAMEDATALEN * 2];
	char	   *base = get_rel_name(relid);

	if (base == NULL)
		return InvalidOid;
	snprintf(name, sizeof(name), "%s_" INT64_FORMAT, base, shardid);
	if (strlen(name) >= NAMEDATALEN)
		return InvalidOid;		/* Citus would have shortened it: not ours */
	return cv_citus_relid(name, get_rel_namespace(relid));
}

/* whether two relations have the same columns (names, types) at the same positions */
static bool
cv_citus_same_columns(Oid a, Oid b)
{
	Relation	ra = relation_open(a, AccessShareLock);
	Relation	rb = relation_open(b, AccessShareLock);
	TupleDesc	da = RelationGetDescr(ra);
	TupleDesc	db = RelationGetDescr(rb);
	bool		same = da->natts == db->natts;
	int			i;

	for (i = 0; same && i < da->natts; i++)
	{
		Form_pg_attribute x = TupleDescAttr(da, i);
		Form_pg_attribute y = TupleDescAttr(db, i);

		if (x->attisdropped != y->attisdropped ||
			(!x->attisdropped &&
			 (x->atttypid != y->atttypid || strcmp(NameStr(x->attname), NameStr(y->attname)) != 0)))
			same = false;
	}
	relation_close(rb, AccessShareLock);
	relation_close(ra, AccessShareLock);
	return same;
}

/*
 * The relation holding relid's rows on this node (relid itself unless it is
 * a Citus table with a single shard), and, for each of the nindex indexes of
 * relid in idx, the matching index of that relation (in place).  An error
 * when relid is a Citus table without a placement on this node, or whose
 * local shard's columns do not match the table's.
 */
Oid
CvCitusRowsRelation(Oid relid, Oid *idx, int nindex)
{
	int64		shardid;
	Oid			shard;
	int			k;

	if (!OidIsValid(relid))
		return InvalidOid;
	shardid = cv_citus_only_shard(relid);
	if (shardid == 0)
		return relid;
	shard = cv_citus_shard_relid(relid, shardid);
	if (!OidIsValid(shard))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" of customer_vault has no placement on this node", get_rel_name(relid)),
				 errdetail("It is a Citus reference table, and this node holds no copy of it."),
				 errhint("On the coordinator, add the coordinator to the metadata with citus_set_coordinator_host() and run replicate_reference_tables().")));
	/* the code reads columns by number: the shard must have the same ones */
	if (!cv_citus_same_columns(relid, shard))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the local shard of table \"%s\" of customer_vault has other columns than the table", get_rel_name(relid)),
				 errdetail("customer_vault reads the shard's columns by position."),
				 errhint("Recreate the reference table's shards, e.g. with undistribute_table() and customer_vault.citus_setup().")));
	for (k = 0; k < nindex; k++)
	{
		Oid			si = cv_citus_shard_relid(idx[k], shardid);

		if (!OidIsValid(si))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("index \"%s\" of customer_vault has no local shard", get_rel_name(idx[k])),
					 errdetail("The table is a Citus reference table whose local copy lacks that index.")));
		idx[k] = si;
	}
	return shard;
}

/*
 * Whether relid is a table Citus knows (pg_dist_partition: distributed,
 * reference or Citus local): its rows are in shards, on other nodes, where
 * ctid and tableoid name a row only together with the node.
 */
bool
CvCitusTable(Oid relid)
{
	Oid			dist_partition = cv_citus_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	Oid			idx;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	bool		found;

	if (!OidIsValid(dist_partition) || !OidIsValid(relid))
		return false;
	idx = cv_citus_relid("pg_dist_partition_logical_relid_index", PG_CATALOG_NAMESPACE);
	rel = table_open(dist_partition, AccessShareLock);
	/* pg_dist_partition: logicalrelid regclass, ... */
	if (RelationGetDescr(rel)->natts < 1 ||
		TupleDescAttr(RelationGetDescr(rel), 0)->atttypid != REGCLASSOID)
		elog(ERROR, "pg_dist_partition has an unexpected layout");
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, idx, OidIsValid(idx), NULL, 1, &skey);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Whether this node is a Citus worker: pg_dist_local_group (one row, kept by
 * Citus on every node) holds a group id other than 0, the coordinator's.
 * False without Citus.
 */
bool
CvCitusIsWorker(void)
{
	Oid			local_group = cv_citus_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		worker = false;

	if (!OidIsValid(local_group))
		return false;
	rel = table_open(local_group, AccessShareLock);
	/* pg_dist_local_group: groupid int */
	if (RelationGetDescr(rel)->natts < 1 ||
		TupleDescAttr(RelationGetDescr(rel), 0)->atttypid != INT4OID)
		elog(ERROR, "pg_dist_local_group has an unexpected layout");
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		if (!isnull && DatumGetInt32(d) != 0)
			worker = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return worker;
}

/*
 * An error on a Citus worker: what writes evidence (the consent ledger,
 * legal holds, erasure receipts, the purge log, exports, role locks) or the
 * extension's registry (keys, purposes, protected and masked columns,
 * retention policies, subject tables) must run on the coordinator, which
 * keeps the ledgers, logs and registry; on a worker (connected directly) the
 * reference tables would change everywhere while the evidence stayed in the
 * worker's local tables, out of the coordinator's verify_ledger and reports,
 * and a registry row written there would be seen by that worker only.
 */
void
CvRefuseOnCitusWorker(const char *what)
{
	if (CvCitusIsWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s must run on the Citus coordinator", what),
				 errdetail("The ledgers, logs and registry of customer_vault are kept on the coordinator; on a worker they would be written to that worker only."),
				 errhint("Connect to the coordinator.")));
}

PG_FUNCTION_INFO_V1(cv_coordinator_only);

/* customer_vault._coordinator_only(what text): CvRefuseOnCitusWorker for SQL code */
Datum
cv_coordinator_only(PG_FUNCTION_ARGS)
{
	CvRefuseOnCitusWorker(PG_ARGISNULL(0) ? "this function" : text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * The placements of Citus table relid on which its owner is under FORCE ROW
 * LEVEL SECURITY (RLS enabled and forced on the shard relation itself), as
 * "<shard> on <node>:<port>, ..." (NULL when none), their number in
 * *nforced.  Citus copies the table's setting to the shards when it is
 * changed through the coordinator, but the owner can change a shard by hand
 * (on a worker, or with citus.enable_manual_changes_to_shards); the
 * coordinator's pg_class does not show it.  Asked on every placement through
 * run_command_on_placements, as the owner (whose connections to the nodes
 * the erasure's and the purge's statements use anyway), security-restricted
 * and with a pinned search_path (run_command_on_placements names Citus's
 * functions unqualified).  The shard goes into the command as the row type
 * of its relation (Citus puts its name there quoted as an identifier), so no
 * name is ever inside a literal.  A placement that cannot be read (e.g. a
 * table created in this transaction: other connections cannot see it) is an
 * error: a shard not checked is not taken as in order.
 */
char *
CvCitusForcedShards(Oid relid, Oid owner, int *nforced)
{
	static const char *cmd =
		"SELECT (c.relrowsecurity AND c.relforcerowsecurity)::pg_catalog.text"
		" FROM pg_catalog.pg_class c"
		" WHERE c.reltype OPERATOR(pg_catalog.=) pg_catalog.pg_typeof(NULL::%s)::pg_catalog.oid";
	Oid			argtypes[2] = {REGCLASSOID, TEXTOID};
	Datum		args[2];
	Oid			save_userid;
	int			save_sec;
	int			nest;
	StringInfoData list;
	uint64		i;
	int			rc;
	char	   *result = NULL;
	char	   *failed = NULL;
	MemoryContext outer = CurrentMemoryContext;

	*nforced = 0;
	if (!CvCitusTable(relid))
		return NULL;
	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(cmd);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT p.shardid, p.nodename, p.nodeport, p.success, p.result"
							   " FROM pg_catalog.run_command_on_placements($1, $2) p"
							   " ORDER BY p.shardid, p.nodename, p.nodeport",
							   2, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "run_command_on_placements failed: %s", SPI_result_code_string(rc));
	initStringInfo(&list);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		ok = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull)) && !isnull;
		char	   *res = SPI_getvalue(tup, desc, 5);
		char	   *where = psprintf("%s_%s on %s:%s", get_rel_name(relid), SPI_getvalue(tup, desc, 1),
									 SPI_getvalue(tup, desc, 2), SPI_getvalue(tup, desc, 3));

		if (!ok || res == NULL || (strcmp(res, "true") != 0 && strcmp(res, "false") != 0))
		{
			if (failed == NULL)
				failed = MemoryContextStrdup(outer, psprintf("%s: %s", where, res ? res : "no answer"));
			continue;
		}
		if (strcmp(res, "true") == 0)
		{
			appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "", where);
			(*nforced)++;
		}
	}
	if (list.len > 0)
		result = MemoryContextStrdup(outer, list.data);
	SPI_finish();
	AtEOXact_GUC(false, nest);
	SetUserIdAndSecContext(save_userid, save_sec);

	if (failed != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not check the row-level security of the shards of Citus table %s",
						quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid))),
				 errdetail("Placement %s.", failed),
				 errhint("Commit the transaction that created or changed the table, and make sure its owner can connect to every node, then run it again.")));
	return result;
}

/*
 * An error (0A000) when the owner of Citus table relid is under FORCE ROW
 * LEVEL SECURITY on any of its shards (CvCitusForcedShards): there the
 * owner's policies apply to the statements customer_vault runs as the owner.
 * With row security off sent to the workers (CvBecomeTableOwner) they fail
 * on that shard with 42501, a message naming a shard and no way out; in any
 * session the setting did not reach, they would miss the rows the policies
 * hide while the receipt or the purge log says done (the state before
 * session 22).  Refused up front instead, before anything is changed.
 * what: the function refusing.  Nothing for an owner no policy applies to
 * (superuser, BYPASSRLS) or a table Citus does not know.
 */
void
CvCitusRefuseForcedShards(Oid relid, Oid owner, const char *what)
{
	char	   *shards;
	char	   *name;
	int			n;

	if (superuser_arg(owner) || has_bypassrls_privilege(owner) || !CvCitusTable(relid))
		return;
	shards = CvCitusForcedShards(relid, owner, &n);
	if (shards == NULL)
		return;
	name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s cannot reach every row of Citus table %s: its owner is under FORCE ROW LEVEL SECURITY on %d of its shards",
					what, name, n),
			 errdetail("FORCE ROW LEVEL SECURITY was set on the shard relations themselves: %s. There the owner's own row security policies would apply to the statements customer_vault runs on the shards as the owner.",
					   shards),
			 errhint("Undo it on every placement, e.g. SELECT run_command_on_placements('%s', 'ALTER TABLE %%s NO FORCE ROW LEVEL SECURITY'); customer_vault.citus_check_policies() lists the shards that differ from the table. Then run it again.",
					 name)));
}

PG_FUNCTION_INFO_V1(cv_citus_refuse_forced_shards);

/*
 * customer_vault._citus_refuse_forced_shards(tbl regclass, what text):
 * CvCitusRefuseForcedShards for the purge (SQL), for roles that may change
 * or read the table.
 */
Datum
cv_citus_refuse_forced_shards(PG_FUNCTION_ARGS)
{
	Oid			relid;
	HeapTuple	tup;
	Oid			owner;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	relid = PG_GETARG_OID(0);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	/* it connects to the nodes as the owner: only for who may act on the table */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT | ACL_UPDATE | ACL_DELETE) != ACLCHECK_OK &&
		!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
	CvCitusRefuseForcedShards(relid, owner,
							  PG_ARGISNULL(1) ? "this function" : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}
