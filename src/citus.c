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
#include "utils/builtins.h"
#include "utils/fmgroids.h"
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
