/*-------------------------------------------------------------------------
 * import.c
 *		Recording consent fast: grant_consent() and the bulk
 *		import_consents(query) in C.  Both append hash-chained entries to
 *		consent_ledger in exactly the format (and with exactly the hash) of
 *		the SQL _ledger_hash() (hash version 1) or _ledger_hash_v2() (0.5.0:
 *		the subject stored as its keyed hash, the plain subject only in
 *		consent_state), so verify_ledger() checks their entries like
 *		any other, and both serialize on the row lock of the chain head
 *		(consent_ledger_head) like _ledger_append().  The writes run as the
 *		ledger's owner inside a security-restricted operation; the user's
 *		import query runs before that, with the caller's own rights.  The
 *		consent cache learns of the changes through the statement triggers on
 *		consent_state, which these writes fire like any other.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "parser/parse_func.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* consent.c: where this transaction last wrote the chain head */
extern Datum cv_ledger_head_tid(PG_FUNCTION_ARGS);
extern Datum cv_ledger_head_remember(PG_FUNCTION_ARGS);

#define IMPORT_BATCH	10000	/* rows fetched, checked and written at a time */

/* columns of customer_vault.purposes, in table order */
#define Anum_imp_purpose_name		1
#define Anum_imp_purpose_basis		2
#define Anum_imp_purpose_valid_for	4

/* plans prepared once per backend and kept (the plan cache revalidates them) */
static SPIPlanPtr plan_head_lock = NULL;
static SPIPlanPtr plan_head_hint = NULL;
static SPIPlanPtr plan_head_clean = NULL;
static SPIPlanPtr plan_head_read = NULL;
static SPIPlanPtr plan_head_write = NULL;
static SPIPlanPtr plan_grant = NULL;
static SPIPlanPtr plan_grant_local = NULL;
static SPIPlanPtr plan_grant_state = NULL;
static SPIPlanPtr plan_ledger_many = NULL;
static SPIPlanPtr plan_state_many = NULL;
static SPIPlanPtr plan_dups = NULL;
static SPIPlanPtr plan_latest = NULL;
static SPIPlanPtr plan_grant2 = NULL;
static SPIPlanPtr plan_grant2_local = NULL;
static SPIPlanPtr plan_ledger_many2 = NULL;
static SPIPlanPtr plan_dups2 = NULL;
static SPIPlanPtr plan_grant2_state = NULL;
static SPIPlanPtr plan_state_many2 = NULL;
static SPIPlanPtr plan_state_new = NULL;
static SPIPlanPtr plan_state_new2 = NULL;
static SPIPlanPtr plan_subject_one = NULL;

/* the chain head as this append found it */
typedef struct CvHead
{
	ItemPointerData tid;
	int64		last_id;
	bool		has_hash;
	uint8		last_hash[32];
} CvHead;

/*
 * The chain head as this backend's last append left it: valid while the
 * chain head's ctid that consent.c remembers for this transaction is still
 * the one written then (any other append moves it), forgotten on any
 * subtransaction abort.  Saves reading the head row on every append.
 */
static CvHead imp_cached;
static LocalTransactionId imp_cached_lxid = InvalidLocalTransactionId;
static bool imp_cached_valid = false;
static bool imp_callback_registered = false;

/*
 * The chain head version this backend wrote last, in any transaction: the
 * first append of a later transaction locks it by its ctid and takes it when
 * it is still that head (same last id and hash, not updated since), instead
 * of scanning every page of consent_ledger_head (a transaction that appended
 * many entries leaves as many versions, and the live one on the table's last
 * page, so the table stays that long).  Anything else (another backend
 * appended since, the version was rolled back, the table was rewritten)
 * finds no such row and takes the scan.
 */
static CvHead imp_hint;
static bool imp_hint_valid = false;

static void imp_prune_head_page(ItemPointer tid);
static void imp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

/* a purpose as recording consent needs it */
typedef struct CvImpPurpose
{
	char		name[64];		/* hash key (purpose names are < 64 bytes) */
	bool		exists;
	bool		consent;		/* lawful basis is consent */
	bool		has_valid_for;
	Interval	valid_for;
} CvImpPurpose;

/* the ledger owner's switch (maint.c) */
typedef CvAsTableOwner CvAsOwner;

/*
 * What every consent write looks up in the catalog (part PERF, issue 15:
 * these lookups were ~6% of a grant_consent): the extension's relations, the
 * ledger's owner and whether the ledger has the column of hash version 2.
 * Kept per backend until a relcache invalidation names one of the relations
 * (or all: a reset of the invalidation queue) or a schema changes
 * (ImportRelcacheInval, imp_inval_namespace); not kept while Citus is loaded,
 * whose metadata decides which relation holds the rows.
 */
typedef struct ImpCatalog
{
	Oid			nsp;
	Oid			ledger;			/* consent_ledger */
	Oid			ledger_owner;
	bool		ledger_v2;		/* consent_ledger.subject_hash exists */
	Oid			head;			/* consent_ledger_head */
	Oid			purposes;
	Oid			purposes_pkey;
	Oid			cstate;			/* consent_state */
} ImpCatalog;

static ImpCatalog imp_cat;
static bool imp_cat_valid = false;
static uint64 imp_cat_inval_count = 0;	/* bumped by every invalidation that may concern imp_cat */
static bool imp_inval_registered = false;

/*
 * grant_consent's purposes, as it last read them (lawful basis, consent
 * lifetime): valid within the transaction that read them, and only while no
 * change of purposes may have happened since (imp_purpose_gen: bumped by the
 * relcache invalidation of purposes, which a change of its rows sends to
 * every session at commit (_consent_changed, ImpPurposesChanged), by this
 * session's own change at once, and by a subtransaction's abort).  Not kept
 * while Citus is loaded: purposes is a reference table there, written on
 * other nodes.
 */
#define IMP_PURPOSE_MEMOS	8

typedef struct ImpPurposeMemo
{
	CvImpPurpose p;
	uint64		gen;
	LocalTransactionId lxid;
	uint64		completions;	/* snapXactCompletionCount of the snapshot it was read with */
} ImpPurposeMemo;

static ImpPurposeMemo imp_pmemo[IMP_PURPOSE_MEMOS];
static int	imp_pmemo_next = 0;		/* the slot the next miss fills */
static uint64 imp_purpose_gen = 1;
static uint64 imp_lookup_completions = 0;	/* of imp_lookup_purpose's last snapshot */

/*
 * A relcache invalidation: of one of imp_cat's relations, or of every
 * relation.  Called by the extension's one relcache callback (keys.c), once
 * imp_catalog() has started to cache.
 */
void
ImportRelcacheInval(Oid relid)
{
	if (!imp_inval_registered)
		return;
	if (!OidIsValid(relid) || !imp_cat_valid ||
		relid == imp_cat.ledger || relid == imp_cat.head || relid == imp_cat.purposes ||
		relid == imp_cat.purposes_pkey || relid == imp_cat.cstate)
	{
		imp_cat_valid = false;
		imp_cat_inval_count++;
		imp_purpose_gen++;
	}
}

/* a schema was renamed or dropped (or every catalog cache was reset) */
static void
imp_inval_namespace(Datum arg, int cacheid, uint32 hashvalue)
{
	imp_cat_valid = false;
	imp_cat_inval_count++;
	imp_purpose_gen++;
}

/*
 * ImpPurposesChanged: a row of purposes changed in this session (trigger
 * _consent_changed): forget the purposes grant_consent read, here at once,
 * and in every other session when this transaction commits.
 */
void
ImpPurposesChanged(Relation purposes)
{
	CacheInvalidateRelcache(purposes);
	imp_purpose_gen++;
}

/* whether the catalog and purpose caches may be used (not with Citus loaded) */
static bool
imp_caching(void)
{
	return !CvCitusLoaded();
}

/* imp_cat, looked up again unless still valid */
static const ImpCatalog *
imp_catalog(void)
{
	ImpCatalog	c;
	uint64		count;
	HeapTuple	tup;

	/*
	 * The callbacks only while the caches are used (not with Citus loaded).
	 * Relcache invalidations arrive through the extension's one relcache
	 * callback (keys.c): a backend has 10 relcache callback slots in all,
	 * PostgreSQL 18's own, Citus 14's five and pg_cron's take most of them,
	 * and an eleventh is FATAL ("out of relcache_callback_list slots").
	 */
	if (!imp_inval_registered && imp_caching())
	{
		if (!imp_callback_registered)
		{
			RegisterSubXactCallback(imp_subxact_callback, NULL);
			imp_callback_registered = true;
		}
		CacheRegisterSyscacheCallback(NAMESPACEOID, imp_inval_namespace, (Datum) 0);
		imp_inval_registered = true;
	}
	if (imp_cat_valid && imp_caching())
		return &imp_cat;
	count = imp_cat_inval_count;
	c.nsp = get_namespace_oid(CV_SCHEMA, false);
	c.ledger = get_relname_relid("consent_ledger", c.nsp);
	if (!OidIsValid(c.ledger))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the consent ledger does not exist")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(c.ledger));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", c.ledger);
	c.ledger_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	c.ledger_v2 = get_attnum(c.ledger, "subject_hash") != InvalidAttrNumber;
	c.head = get_relname_relid("consent_ledger_head", c.nsp);
	c.purposes = get_relname_relid("purposes", c.nsp);
	c.purposes_pkey = get_relname_relid("purposes_pkey", c.nsp);
	c.cstate = get_relname_relid("consent_state", c.nsp);
	imp_cat = c;
	/* kept only when no invalidation came in while it was read */
	imp_cat_valid = count == imp_cat_inval_count && imp_caching();
	return &imp_cat;
}

/*
 * Act as the owner of consent_ledger (the extension's owner), security-
 * restricted, through the switch maintenance and erasure use
 * (CvBecomeTableOwner: a pinned search_path and output settings, row
 * security off), with the
 * settings of the SQL functions this replaces: no sequential scan for the
 * chain head reached by ctid (a plan made while the head table was one page
 * would otherwise scan every version a bulk load leaves), and no JIT.
 */
static void
imp_become_owner(CvAsOwner *sw)
{
	CvBecomeTableOwner(imp_catalog()->ledger_owner, sw);
	CvSetSaved("enable_seqscan", "off");
	CvSetSaved("jit", "off");
}

/* back to the calling user and its settings */
static void
imp_restore_user(CvAsOwner *sw)
{
	CvRestoreCaller(sw);
}

/* SPI execution of a kept plan that must succeed */
static int
imp_exec(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, count);

	if (rc < 0)
		elog(ERROR, "consent ledger statement failed: %s", SPI_result_code_string(rc));
	return rc;
}

/*
 * A purpose's lawful basis and consent lifetime (as the owner): one probe of
 * purposes_pkey, under a snapshot taken as SPI would take it for a query
 * (after a command counter increment), without planning or an executor.
 */
static void
imp_lookup_purpose(const char *name, CvImpPurpose *p)
{
	const ImpCatalog *cat = imp_catalog();
	Oid			relid = cat->purposes;
	Oid			pkey = cat->purposes_pkey;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	Snapshot	snap;

	p->exists = false;
	p->consent = false;
	p->has_valid_for = false;
	if (!OidIsValid(relid) || !OidIsValid(pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the consent purposes table does not exist")));
	/* a Citus reference table (citus_setup): its rows are in the local shard */
	relid = CvCitusRowsRelation(relid, &pkey, 1);
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	imp_lookup_completions = snap->snapXactCompletionCount;
	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&skey, Anum_imp_purpose_name, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(name));
	scan = systable_beginscan(rel, pkey, true, snap, 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;

		p->exists = true;
		d = heap_getattr(tup, Anum_imp_purpose_basis, desc, &isnull);
		if (!isnull)
		{
			text	   *basis = DatumGetTextPP(d);

			p->consent = VARSIZE_ANY_EXHDR(basis) == 7 && memcmp(VARDATA_ANY(basis), "consent", 7) == 0;
		}
		d = heap_getattr(tup, Anum_imp_purpose_valid_for, desc, &isnull);
		if (!isnull)
		{
			p->has_valid_for = true;
			memcpy(&p->valid_for, DatumGetIntervalP(d), sizeof(Interval));
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
}

/*
 * A purpose for grant_consent: as this transaction last read it when no
 * change of purposes may have happened since (imp_pmemo), else looked up
 * (imp_lookup_purpose) and kept.  The invalidations of other sessions'
 * committed changes are taken in first, so a grant that starts after such a
 * commit reads the purpose again.  And a memo is used only under a snapshot
 * that saw the same transactions finished as the one it was read with (the
 * same snapXactCompletionCount: no transaction of any session ended in
 * between).  A change of purposes committed by another session is visible
 * to new snapshots before that session sends its invalidation (review 25:
 * a grant running between the two stored the old consent lifetime while a
 * read of purposes in the same statement showed the new one); the count
 * closes that window, and covers a change made with the purposes triggers
 * disabled too.  Under READ COMMITTED a memo then serves the grants of one
 * transaction while no other transaction ends; under REPEATABLE READ the
 * transaction's one snapshot, as a read of purposes would.
 */
static void
imp_grant_purpose(const char *name, CvImpPurpose *p)
{
	LocalTransactionId lxid = CV_PROC_LXID(MyProc);
	uint64		gen;
	uint64		completions;
	int			i;

	if (!imp_caching() || strlen(name) >= sizeof(p->name))
	{
		imp_lookup_purpose(name, p);
		return;
	}
	AcceptInvalidationMessages();
	completions = GetTransactionSnapshot()->snapXactCompletionCount;
	for (i = 0; i < IMP_PURPOSE_MEMOS && completions != 0; i++)
	{
		ImpPurposeMemo *m = &imp_pmemo[i];

		if (m->lxid == lxid && m->gen == imp_purpose_gen && m->completions == completions &&
			strcmp(m->p.name, name) == 0)
		{
			*p = m->p;
			return;
		}
	}
	gen = imp_purpose_gen;
	imp_lookup_purpose(name, p);
	/* kept when it exists and no invalidation came in meanwhile */
	if (p->exists && gen == imp_purpose_gen && imp_lookup_completions != 0)
	{
		ImpPurposeMemo *m = &imp_pmemo[imp_pmemo_next];

		m->p = *p;
		strlcpy(m->p.name, name, sizeof(m->p.name));
		m->gen = gen;
		m->lxid = lxid;
		m->completions = imp_lookup_completions;
		imp_pmemo_next = (imp_pmemo_next + 1) % IMP_PURPOSE_MEMOS;
	}
}

/* the chain head's ctid this transaction last wrote, if any */
static bool
imp_known_head(ItemPointer out)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		d;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	d = cv_ledger_head_tid(fcinfo);
	if (fcinfo->isnull)
		return false;
	ItemPointerCopy((ItemPointer) DatumGetPointer(d), out);
	return true;
}

/* remember where this transaction wrote the chain head */
static void
imp_remember_head(ItemPointer tid)
{
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(tid);
	fcinfo->args[0].isnull = false;
	(void) cv_ledger_head_remember(fcinfo);
}

/* copy a bytea hash out of an SPI result column */
static bool
imp_get_hash(HeapTuple tup, TupleDesc desc, int col, uint8 out[32])
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != 32)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the consent ledger's chain head holds a malformed hash")));
	memcpy(out, VARDATA_ANY(b), 32);
	return true;
}

/* a subtransaction abort may leave the head row at an older version */
static void
imp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		imp_cached_valid = false;
		/* a purpose read after a change the subtransaction made and undid */
		imp_purpose_gen++;
	}
}

/*
 * The head version this backend wrote last, locked, when it is still the
 * chain head: the row at its ctid, not updated since (FOR UPDATE in READ
 * COMMITTED re-checks the ctid against a newer version and skips it), with
 * the last id and hash written then, the ledger's last entry still that id
 * (read under the query's snapshot: an append committed later moved the head
 * row, so it is not found).  Every appender locks the newest head version,
 * so holding it serializes this append with every other one; an extra head
 * row naming an earlier entry (inserted by hand, or CREATE EXTENSION's after
 * a restore) is removed by the next append that scans.
 */
static bool
imp_head_by_hint(CvHead *h)
{
	Oid			types[1] = {TIDOID};
	Datum		v[1];
	bool		isnull;
	CvHead		found;
	int64		last;

	imp_prune_head_page(&imp_hint.tid);
	v[0] = PointerGetDatum(&imp_hint.tid);
	imp_exec(CvSavedPlan(&plan_head_hint,
					  "SELECT h.ctid, h.last_id, h.last_hash,"
					  " (SELECT l.id FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1)"
					  " FROM customer_vault.consent_ledger_head h"
					  " WHERE h.ctid OPERATOR(pg_catalog.=) $1 FOR UPDATE",
					  1, types), v, NULL, 0);
	if (SPI_processed != 1)
		return false;
	/* the ledger's last entry is the one it names (a restore's head may name a later one) */
	last = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (isnull || last != imp_hint.last_id)
		return false;
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 1, &isnull)),
					&found.tid);
	found.last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		return false;
	found.has_hash = imp_get_hash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, found.last_hash);
	if (!ItemPointerEquals(&found.tid, &imp_hint.tid) || found.last_id != imp_hint.last_id ||
		found.has_hash != imp_hint.has_hash ||
		(found.has_hash && memcmp(found.last_hash, imp_hint.last_hash, 32) != 0))
		return false;
	*h = found;
	return true;
}

/*
 * Prune the page of the head version at tid, as a sequential scan of the head
 * table does on every page it reads (heap_page_prune_opt: only when the page
 * is nearly full and holds versions dead to everyone).  A lookup by ctid
 * prunes nothing, and without it every append of a transaction would leave
 * its head version behind and the table would grow by a page every few dozen
 * transactions until autovacuum came by.
 */
static void
imp_prune_head_page(ItemPointer tid)
{
	Oid			relid = imp_catalog()->head;
	Relation	rel;
	BlockNumber blk = ItemPointerGetBlockNumber(tid);

	if (!OidIsValid(relid))
		return;
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind == RELKIND_RELATION && blk < RelationGetNumberOfBlocks(rel))
	{
		Buffer		buf = ReadBuffer(rel, blk);

		heap_page_prune_opt(rel, buf);
		ReleaseBuffer(buf);
	}
	table_close(rel, AccessShareLock);
}

/*
 * The chain head, locked: by its ctid after this transaction's first append
 * (the row is ours then), else the newest head row FOR UPDATE (and any other
 * head row deleted: a restore leaves the one CREATE EXTENSION made).
 */
static void
imp_head(CvHead *h)
{
	bool		isnull;
	Oid			types[1] = {TIDOID};
	Datum		v[1];

	if (!imp_callback_registered)
	{
		RegisterSubXactCallback(imp_subxact_callback, NULL);
		imp_callback_registered = true;
	}
	if (imp_known_head(&h->tid))
	{
		if (imp_cached_valid && imp_cached_lxid == CV_PROC_LXID(MyProc) &&
			ItemPointerEquals(&h->tid, &imp_cached.tid))
		{
			*h = imp_cached;
			return;
		}
		v[0] = PointerGetDatum(&h->tid);
		imp_exec(CvSavedPlan(&plan_head_read,
						  "SELECT h.last_id, h.last_hash FROM customer_vault.consent_ledger_head h"
						  " WHERE h.ctid OPERATOR(pg_catalog.=) $1",
						  1, types), v, NULL, 1);
		if (SPI_processed == 1)
		{
			h->last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			h->has_hash = imp_get_hash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, h->last_hash);
			return;
		}
	}
	if (imp_hint_valid && imp_head_by_hint(h))
		return;

	/*
	 * Every head row, newest first, locked (one, but for right after a
	 * restore): the others are deleted below only when there are any, so the
	 * usual first append of a transaction runs one statement here, not two.
	 */
	imp_exec(CvSavedPlan(&plan_head_lock,
					  "SELECT h.ctid, h.last_id, h.last_hash FROM customer_vault.consent_ledger_head h"
					  " ORDER BY h.last_id DESC FOR UPDATE",
					  0, NULL), NULL, NULL, 0);
	if (SPI_processed < 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the consent ledger has no chain head"),
				 errhint("Insert the last entry's id and hash into customer_vault.consent_ledger_head.")));
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 1, &isnull)),
					&h->tid);
	h->last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the consent ledger's chain head has no last id")));
	h->has_hash = imp_get_hash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, h->last_hash);
	if (SPI_processed == 1)
		return;
	v[0] = PointerGetDatum(&h->tid);
	imp_exec(CvSavedPlan(&plan_head_clean,
					  "DELETE FROM customer_vault.consent_ledger_head h WHERE h.ctid OPERATOR(pg_catalog.<>) $1",
					  1, types), v, NULL, 0);
}

/* the head as this backend just wrote it */
static void
imp_cache_head(const CvHead *h)
{
	imp_cached = *h;
	imp_cached_lxid = CV_PROC_LXID(MyProc);
	imp_cached_valid = true;
	imp_hint = *h;
	imp_hint_valid = true;
}

/* move the chain head to the last entry written, and remember where it is now */
static void
imp_head_write(CvHead *h)
{
	Oid			types[3] = {TIDOID, INT8OID, BYTEAOID};
	Datum		v[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	ItemPointerData tid;

	v[0] = PointerGetDatum(&h->tid);
	v[1] = Int64GetDatum(h->last_id);
	if (h->has_hash)
	{
		bytea	   *b = palloc(VARHDRSZ + 32);

		SET_VARSIZE(b, VARHDRSZ + 32);
		memcpy(VARDATA(b), h->last_hash, 32);
		v[2] = PointerGetDatum(b);
	}
	else
		nulls[2] = 'n';
	imp_exec(CvSavedPlan(&plan_head_write,
					  "UPDATE customer_vault.consent_ledger_head h SET last_id = $2, last_hash = $3"
					  " WHERE h.ctid OPERATOR(pg_catalog.=) $1 RETURNING h.ctid",
					  3, types), v, nulls, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("consent ledger chain head not found")));
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 1, &isnull)),
					&tid);
	ItemPointerCopy(&tid, &h->tid);
	imp_remember_head(&tid);
	imp_cache_head(h);
}

/* a time as _ledger_hash encodes it: integer microseconds since the Unix epoch */
static int64
imp_unix_us(TimestampTz t)
{
	return (int64) t + ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC);
}

/* a JSON string, or null */
static void
imp_json_string(StringInfo buf, const char *s)
{
	if (s)
		escape_json(buf, s);
	else
		appendStringInfoString(buf, "null");
}

static void imp_sha256_utf8(StringInfo buf, int off, uint8 out[32]);
static void imp_insert_state(bool v2, Oid *types, Datum *v);
static void imp_insert_state_exec(bool v2, Oid *types, Datum *v);

/* bytes as lower-case hex (as encode(..., 'hex')) */
static void
imp_append_hex(StringInfo buf, const uint8 *b, int len)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < len; i++)
	{
		appendStringInfoChar(buf, hex[b[i] >> 4]);
		appendStringInfoChar(buf, hex[b[i] & 15]);
	}
}

/*
 * Whether evidence entries are written in hash version 2 (the subject as its
 * keyed hash): a root key is configured, and the ledger has the 0.5.0
 * columns (not so while the library is newer than the extension's tables,
 * before ALTER EXTENSION UPDATE).  Otherwise the version-1 form of 0.4.0.
 */
static bool
imp_v2_ready(void)
{
	if ((cv_root_key_file == NULL || cv_root_key_file[0] == '\0') &&
		(cv_root_key_command == NULL || cv_root_key_command[0] == '\0'))
		return false;
	return imp_catalog()->ledger_v2;
}

/* the keyed hash an entry of version 2 stores for a subject (_subject_hash) */
static void
imp_subject_hash(const char *subject, int len, uint8 out[32])
{
	if (!CvSubjectHash(subject, len, true, out))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the subject hash key does not exist and cannot be made here"),
				 errhint("Record consent on the primary, in a transaction that can write.")));
}


/*
 * The chained hash of one entry, byte for byte as the SQL _ledger_hash():
 * SHA-256 over the previous hash and the UTF-8 text of
 * jsonb_build_array(id, subject, purpose, action, evidence, valid_until_us,
 * recorded_at_us, recorded_by).  buf is scratch space, reset here.
 */
static void
imp_entry_hash(StringInfo buf, const CvHead *h, int64 id, const char *subject, const uint8 *subject_hash,
			   const char *purpose, const char *action, Jsonb *evidence, bool has_until, TimestampTz until,
			   TimestampTz recorded_at, const char *recorded_by, uint8 out[32])
{
	resetStringInfo(buf);
	if (h->has_hash)
		appendBinaryStringInfo(buf, (const char *) h->last_hash, 32);
	if (subject_hash != NULL)
	{
		/* version 2: [2, id, null, "<hex of the subject hash>", ...] */
		appendStringInfo(buf, "[2, " INT64_FORMAT ", null, \"", id);
		imp_append_hex(buf, subject_hash, 32);
		appendStringInfoString(buf, "\", ");
	}
	else
	{
		appendStringInfo(buf, "[" INT64_FORMAT ", ", id);
		imp_json_string(buf, subject);
		appendStringInfoString(buf, ", ");
	}
	imp_json_string(buf, purpose);
	appendStringInfoString(buf, ", ");
	imp_json_string(buf, action);
	appendStringInfoString(buf, ", ");
	if (evidence)
		(void) JsonbToCString(buf, &evidence->root, VARSIZE(evidence));
	else
		appendStringInfoString(buf, "null");
	if (has_until)
		appendStringInfo(buf, ", " INT64_FORMAT ", ", imp_unix_us(until));
	else
		appendStringInfoString(buf, ", null, ");
	appendStringInfo(buf, INT64_FORMAT ", ", imp_unix_us(recorded_at));
	imp_json_string(buf, recorded_by);
	appendStringInfoChar(buf, ']');
	imp_sha256_utf8(buf, h->has_hash ? 32 : 0, out);
}

/* SHA-256 of buf, its part after the first 'off' bytes converted to UTF-8 (as convert_to) */
static void
imp_sha256_utf8(StringInfo buf, int off, uint8 out[32])
{
	char	   *text;
	int			len;

	text = buf->data;
	len = buf->len;
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		char	   *conv = pg_server_to_any(buf->data + off, buf->len - off, PG_UTF8);

		if (conv != buf->data + off)
		{
			int			clen = strlen(conv);

			text = palloc(off + clen);
			memcpy(text, buf->data, off);
			memcpy(text + off, conv, clen);
			len = off + clen;
		}
	}
	if (!cv_sha256((const uint8 *) text, len, out))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not compute SHA-256")));
}

/* a 32-byte hash as a bytea datum */
static Datum
imp_hash_datum(const uint8 hash[32])
{
	bytea	   *b = palloc(VARHDRSZ + 32);

	SET_VARSIZE(b, VARHDRSZ + 32);
	memcpy(VARDATA(b), hash, 32);
	return PointerGetDatum(b);
}

/* the session user's name, recorded_by of every entry (as _ledger_append) */
static char *
imp_recorded_by(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
}

/* the evidence rules of grant_consent: a non-empty JSON object */
static bool
imp_evidence_ok(Jsonb *ev)
{
	return ev != NULL && JB_ROOT_IS_OBJECT(ev) && !JB_ROOT_IS_SCALAR(ev) && JB_ROOT_COUNT(ev) > 0;
}

/* valid_until capped by the purpose's consent lifetime counted from 'from' */
static void
imp_cap_until(const CvImpPurpose *p, TimestampTz from, bool *has_until, TimestampTz *until)
{
	TimestampTz cap;

	if (!p->has_valid_for)
		return;
	cap = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												  TimestampTzGetDatum(from),
												  IntervalPGetDatum(&p->valid_for)));
	if (!*has_until || cap < *until)
	{
		*has_until = true;
		*until = cap;
	}
}

/*
 * Refuse a subject identifier longer than CV_SUBJECT_MAX bytes (rowno:
 * the import row, 0 for grant_consent).
 */
static void
imp_check_subject_len(Size len, int64 rowno)
{
	if (len <= CV_SUBJECT_MAX)
		return;
	if (rowno > 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("import row " INT64_FORMAT ": subject identifier is too long", rowno),
				 errdetail("A subject identifier of consent is at most %d bytes long.", CV_SUBJECT_MAX)));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("subject identifier is too long"),
			 errdetail("A subject identifier of consent is at most %d bytes long.", CV_SUBJECT_MAX)));
}

/* the fields of a ledger entry as its hash encodes them, in order */
typedef enum CvLedgerField
{
	LF_ID,						/* bigint */
	LF_TEXT,					/* subject, purpose, action: a JSON string */
	LF_HEX,						/* subject_hash: a JSON string of its hex (version 2) */
	LF_JSONB,					/* evidence */
	LF_TIME,					/* valid_until, recorded_at: epoch microseconds */
	LF_NAME						/* recorded_by */
} CvLedgerField;

/*
 * The chained hash of one ledger entry from SQL arguments (prev, then the
 * entry's fields in the order given): SHA-256 over prev and the UTF-8 text
 * of jsonb_build_array([version,] fields...), every field's NULL included as
 * null.  Version 1 writes no version number, version 2 writes 2 first.  The
 * body of _ledger_hash() and _ledger_hash_v2(), which differ only there and
 * in the subject_hash field of version 2.
 */
static Datum
imp_ledger_hash_args(FunctionCallInfo fcinfo, int version, const CvLedgerField *fields, int nfields)
{
	StringInfoData buf;
	int			off = 0;
	uint8		out[32];
	int			i;

	initStringInfo(&buf);
	if (!PG_ARGISNULL(0))
	{
		bytea	   *prev = PG_GETARG_BYTEA_PP(0);

		appendBinaryStringInfo(&buf, VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev));
		off = buf.len;
	}
	appendStringInfoChar(&buf, '[');
	if (version > 1)
		appendStringInfo(&buf, "%d", version);
	for (i = 0; i < nfields; i++)
	{
		int			arg = i + 1;

		if (i > 0 || version > 1)
			appendStringInfoString(&buf, ", ");
		if (PG_ARGISNULL(arg))
		{
			appendStringInfoString(&buf, "null");
			continue;
		}
		switch (fields[i])
		{
			case LF_ID:
				appendStringInfo(&buf, INT64_FORMAT, PG_GETARG_INT64(arg));
				break;
			case LF_TEXT:
				escape_json(&buf, text_to_cstring(PG_GETARG_TEXT_PP(arg)));
				break;
			case LF_HEX:
				{
					bytea	   *sh = PG_GETARG_BYTEA_PP(arg);

					appendStringInfoChar(&buf, '"');
					imp_append_hex(&buf, (const uint8 *) VARDATA_ANY(sh), VARSIZE_ANY_EXHDR(sh));
					appendStringInfoChar(&buf, '"');
				}
				break;
			case LF_JSONB:
				{
					Jsonb	   *ev = PG_GETARG_JSONB_P(arg);

					(void) JsonbToCString(&buf, &ev->root, VARSIZE(ev));
				}
				break;
			case LF_TIME:
				{
					TimestampTz t = PG_GETARG_TIMESTAMPTZ(arg);

					if (TIMESTAMP_NOT_FINITE(t))
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("cannot convert infinity to bigint")));
					appendStringInfo(&buf, INT64_FORMAT, imp_unix_us(t));
				}
				break;
			case LF_NAME:
				escape_json(&buf, NameStr(*PG_GETARG_NAME(arg)));
				break;
		}
	}
	appendStringInfoChar(&buf, ']');
	imp_sha256_utf8(&buf, off, out);
	PG_RETURN_DATUM(imp_hash_datum(out));
}

PG_FUNCTION_INFO_V1(cv_ledger_hash_v2);

/*
 * _ledger_hash_v2(prev, id, subject, subject_hash, purpose, action,
 * evidence, valid_until, recorded_at, recorded_by): the chained hash of a
 * ledger entry of hash version 2: SHA-256 over prev and the UTF-8 text of
 * jsonb_build_array(2, id, subject, encode(subject_hash, 'hex'), purpose,
 * action, evidence, epoch microseconds of valid_until and recorded_at,
 * recorded_by), any argument NULL included.
 */
Datum
cv_ledger_hash_v2(PG_FUNCTION_ARGS)
{
	static const CvLedgerField fields[9] = {LF_ID, LF_TEXT, LF_HEX, LF_TEXT, LF_TEXT, LF_JSONB,
	LF_TIME, LF_TIME, LF_NAME};

	return imp_ledger_hash_args(fcinfo, 2, fields, 9);
}

PG_FUNCTION_INFO_V1(cv_ledger_hash);

/*
 * _ledger_hash(prev, id, subject, purpose, action, evidence, valid_until,
 * recorded_at, recorded_by): the chained hash of one ledger entry, the same
 * bytes as the SQL definition of 0.1.0 and 0.2.0 computed (SHA-256 over prev
 * and the UTF-8 text of jsonb_build_array(id, subject, purpose, action,
 * evidence, epoch microseconds of valid_until and recorded_at, recorded_by)),
 * any argument NULL included.
 */
Datum
cv_ledger_hash(PG_FUNCTION_ARGS)
{
	static const CvLedgerField fields[8] = {LF_ID, LF_TEXT, LF_TEXT, LF_TEXT, LF_JSONB,
	LF_TIME, LF_TIME, LF_NAME};

	return imp_ledger_hash_args(fcinfo, 1, fields, 8);
}

PG_FUNCTION_INFO_V1(cv_ledger_subject_form);

/* whether a text is the word w (of length n) */
static inline bool
imp_text_is(text *t, const char *w, int n)
{
	return VARSIZE_ANY_EXHDR(t) == n && memcmp(VARDATA_ANY(t), w, n) == 0;
}

/*
 * _ledger_subject_form(hash_version, subject, subject_hash, action): the
 * ledger's one check, consent_ledger_subject_form_check, with the
 * three-valued result of the SQL it replaces (action = ANY
 * ('{grant,withdraw,redact}') AND CASE hash_version WHEN 1 THEN subject IS
 * NOT NULL AND subject_hash IS NULL AND action <> 'redact' WHEN 2 THEN
 * subject IS NULL AND length(subject_hash) = 32 ELSE false END, two checks
 * until 0.5.0 folded them): NULL where that is NULL (a CHECK lets NULL pass).
 */
Datum
cv_ledger_subject_form(PG_FUNCTION_ARGS)
{
	int16		version;
	text	   *action = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	bool		redact = false;

	if (action != NULL)
	{
		redact = imp_text_is(action, "redact", 6);
		if (!redact && !imp_text_is(action, "grant", 5) && !imp_text_is(action, "withdraw", 8))
			PG_RETURN_BOOL(false);
	}
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	version = PG_GETARG_INT16(0);
	if (version == 1)
	{
		if (PG_ARGISNULL(1) || !PG_ARGISNULL(2))
			PG_RETURN_BOOL(false);
		if (action == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BOOL(!redact);
	}
	if (version == 2)
	{
		if (!PG_ARGISNULL(1))
			PG_RETURN_BOOL(false);
		if (PG_ARGISNULL(2))
			PG_RETURN_NULL();
		if (VARSIZE_ANY_EXHDR(PG_GETARG_BYTEA_PP(2)) != 32)
			PG_RETURN_BOOL(false);
		/* an unknown action: NULL AND true */
		if (action == NULL)
			PG_RETURN_NULL();
		PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

PG_FUNCTION_INFO_V1(cv_evidence_subject);

/*
 * _evidence_subject(subject, record): the keyed hash an evidence entry
 * stores for the subject, NULL when no root key is configured; with record,
 * the plain subject is kept in evidence_subjects (as the extension's owner:
 * only the extension's own SECURITY DEFINER code calls this).
 */
Datum
cv_evidence_subject(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	bool		record = PG_GETARG_BOOL(1);
	uint8		h[32];
	Datum		hd;

	if (VARSIZE_ANY_EXHDR(subject) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject must not be null or empty")));
	if (!imp_v2_ready())
		PG_RETURN_NULL();
	imp_subject_hash(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), h);
	hd = imp_hash_datum(h);
	if (record)
	{
		CvAsOwner	sw;

		imp_become_owner(&sw);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		imp_exec(CvSavedPlan(&plan_subject_one,
							 "INSERT INTO customer_vault.evidence_subjects (subject_hash, subject) VALUES ($1, $2)"
							 " ON CONFLICT (subject_hash) DO NOTHING",
							 2, (Oid[]) {BYTEAOID, TEXTOID}),
				 (Datum[]) {hd, PointerGetDatum(subject)}, NULL, 0);
		SPI_finish();
		imp_restore_user(&sw);
	}
	PG_RETURN_DATUM(hd);
}

/*
 * CvEvidenceSubjectHash: the keyed hash evidence entries of hash version 2
 * store for a subject, as _evidence_subject(subject, false) gives it (the
 * subject hash key made on first need); false when entries are of version 1
 * (no root key configured, or the tables before ALTER EXTENSION UPDATE).
 */
bool
CvEvidenceSubjectHash(const char *subject, int len, uint8 out[32])
{
	if (!imp_v2_ready())
		return false;
	imp_subject_hash(subject, len, out);
	return true;
}

/* whether consent_state is a Citus reference table (citus_setup) */
static bool
imp_cstate_is_citus(void)
{
	Oid			cstate;

	/* without Citus loaded it is none */
	if (imp_caching())
		return false;
	cstate = imp_catalog()->cstate;
	return OidIsValid(cstate) && CvCitusRowsRelation(cstate, NULL, 0) != cstate;
}

PG_FUNCTION_INFO_V1(cv_grant_consent);

/*
 * grant_consent(subject, purpose, evidence, valid_until): records an explicit
 * opt-in; the checks, messages, ledger entry and state of the plpgsql
 * version it replaces, in one C call.
 */
Datum
cv_grant_consent(PG_FUNCTION_ARGS)
{
	text	   *subject_t = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *purpose_t = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	Jsonb	   *evidence = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	bool		has_until = !PG_ARGISNULL(3);
	TimestampTz until = has_until ? PG_GETARG_TIMESTAMPTZ(3) : 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	char	   *subject;
	char	   *purpose;
	CvImpPurpose p;
	CvAsOwner	sw;
	CvHead		h;
	int64		id;
	TimestampTz ts;
	char	   *who;
	uint8		hash[32];
	uint8		sh[32];
	bool		v2;
	StringInfoData buf;

	/* the ledger is the coordinator's: not on a Citus worker */
	CvRefuseOnCitusWorker("grant_consent()");
	if (subject_t == NULL || VARSIZE_ANY_EXHDR(subject_t) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject must not be null or empty")));
	if (purpose_t == NULL || VARSIZE_ANY_EXHDR(purpose_t) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("purpose must not be null or empty")));
	imp_check_subject_len(VARSIZE_ANY_EXHDR(subject_t), 0);
	subject = text_to_cstring(subject_t);
	purpose = text_to_cstring(purpose_t);
	/* the ledger stores the subject as its keyed hash (hash version 2) */
	v2 = imp_v2_ready();
	if (v2)
		imp_subject_hash(VARDATA_ANY(subject_t), VARSIZE_ANY_EXHDR(subject_t), sh);

	imp_become_owner(&sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	imp_grant_purpose(purpose, &p);
	if (!p.exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("purpose %s does not exist", quote_literal_cstr(purpose)),
				 errhint("Define it with customer_vault.define_purpose().")));
	if (!p.consent)
	{
		bool		isnull;
		char	   *basis;

		/* the basis, for the message (rare path) */
		SPI_execute_with_args("SELECT p.lawful_basis FROM customer_vault.purposes p"
							  " WHERE p.purpose OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(purpose)},
							  NULL, true, 1);
		basis = SPI_processed == 1 ?
			TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) :
			pstrdup("?");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purpose %s rests on %s, not on consent", quote_literal_cstr(purpose), basis),
				 errhint("Processing under that basis needs no consent; record consent only for consent-based purposes.")));
	}
	if (!imp_evidence_ok(evidence))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("evidence must be a non-empty JSON object"),
				 errhint("Record what was shown, when and through which channel, e.g. {\"form\": \"signup-v3\", \"channel\": \"web\"}.")));
	if (has_until && TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_until must be a finite time"),
				 errhint("Leave it NULL for consent without an end date (the purpose's consent lifetime still applies).")));
	if (has_until && until <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_until must be in the future")));
	imp_cap_until(&p, now, &has_until, &until);

	/* the entry, chained to the head */
	imp_head(&h);
	id = h.last_id + 1;
	ts = GetCurrentTimestamp();
	who = imp_recorded_by();
	initStringInfo(&buf);
	imp_entry_hash(&buf, &h, id, subject, v2 ? sh : NULL, purpose, "grant", evidence, has_until, until, ts,
				   who, hash);
	{
		/* the entry, the head and the state in one statement */
		Oid			types[12] = {INT8OID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID,
			TIMESTAMPTZOID, NAMEOID, BYTEAOID, BYTEAOID, TIDOID, TIMESTAMPTZOID, BYTEAOID};
		Datum		v[12];
		char		nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		NameData	nd;
		bool		isnull;
		Datum		tid;

		v[0] = Int64GetDatum(id);
		v[1] = PointerGetDatum(subject_t);
		v[2] = PointerGetDatum(purpose_t);
		v[3] = JsonbPGetDatum(evidence);
		v[4] = TimestampTzGetDatum(until);
		if (!has_until)
			nulls[4] = 'n';
		v[5] = TimestampTzGetDatum(ts);
		namestrcpy(&nd, who);
		v[6] = NameGetDatum(&nd);
		if (h.has_hash)
			v[7] = imp_hash_datum(h.last_hash);
		else
			nulls[7] = 'n';
		v[8] = imp_hash_datum(hash);
		v[9] = PointerGetDatum(&h.tid);
		v[10] = TimestampTzGetDatum(now);
		v[11] = v2 ? imp_hash_datum(sh) : (Datum) 0;
		if (!v2)
			nulls[11] = 'n';
		if (imp_cstate_is_citus())
		{
			/*
			 * consent_state is a Citus reference table (citus_setup): Citus
			 * takes no writes to it and to local tables in one statement.
			 * The ledger and its head first, then the state.
			 */
			if (v2)
				imp_exec(CvSavedPlan(&plan_grant2_local,
									 "WITH l AS (INSERT INTO customer_vault.consent_ledger"
									 "   (id, subject, subject_hash, hash_version, purpose, action, evidence, valid_until,"
									 "    recorded_at, recorded_by, prev_hash, hash)"
									 "   VALUES ($1, NULL, $12, 2, $3, 'grant', $4, $5, $6, $7, $8, $9)),"
									 " h AS (UPDATE customer_vault.consent_ledger_head h SET last_id = $1, last_hash = $9"
									 "        WHERE h.ctid OPERATOR(pg_catalog.=) $10 RETURNING h.ctid)"
									 " SELECT (SELECT h.ctid FROM h)",
									 12, types), v, nulls, 0);
			else
				imp_exec(CvSavedPlan(&plan_grant_local,
									 "WITH l AS (INSERT INTO customer_vault.consent_ledger"
									 "   (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash)"
									 "   VALUES ($1, $2, $3, 'grant', $4, $5, $6, $7, $8, $9)),"
									 " h AS (UPDATE customer_vault.consent_ledger_head h SET last_id = $1, last_hash = $9"
									 "        WHERE h.ctid OPERATOR(pg_catalog.=) $10 RETURNING h.ctid)"
									 " SELECT (SELECT h.ctid FROM h)",
									 11, types), v, nulls, 0);
			isnull = true;
			if (SPI_processed == 1)
			{
				tid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
				if (!isnull)
					ItemPointerCopy((ItemPointer) DatumGetPointer(tid), &h.tid);
			}
			if (SPI_processed != 1 || isnull)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("consent ledger chain head not found")));
			if (v2)
				imp_exec(CvSavedPlan(&plan_grant2_state,
									 "INSERT INTO customer_vault.consent_state AS s"
									 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id, subject_hash)"
									 " VALUES ($1, $2, true, $3, $4, NULL, $5, $6)"
									 " ON CONFLICT (subject, purpose) DO UPDATE"
									 "   SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,"
									 "       withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id, subject_hash = EXCLUDED.subject_hash",
									 6, (Oid[]) {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, BYTEAOID}),
						 (Datum[]) {v[1], v[2], v[4], v[10], v[0], v[11]},
						 (char[]) {' ', ' ', nulls[4], ' ', ' ', ' '}, 0);
			else
				imp_exec(CvSavedPlan(&plan_grant_state,
									 "INSERT INTO customer_vault.consent_state AS s"
									 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)"
									 " VALUES ($1, $2, true, $3, $4, NULL, $5)"
									 " ON CONFLICT (subject, purpose) DO UPDATE"
									 "   SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,"
									 "       withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id",
									 5, (Oid[]) {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID}),
						 (Datum[]) {v[1], v[2], v[4], v[10], v[0]},
						 (char[]) {' ', ' ', nulls[4], ' ', ' '}, 0);
			h.last_id = id;
			h.has_hash = true;
			memcpy(h.last_hash, hash, 32);
			imp_remember_head(&h.tid);
			imp_cache_head(&h);
			goto done;
		}
		if (v2)
			imp_exec(CvSavedPlan(&plan_grant2,
								 "WITH l AS (INSERT INTO customer_vault.consent_ledger"
								 "   (id, subject, subject_hash, hash_version, purpose, action, evidence, valid_until,"
								 "    recorded_at, recorded_by, prev_hash, hash)"
								 "   VALUES ($1, NULL, $12, 2, $3, 'grant', $4, $5, $6, $7, $8, $9)),"
								 " h AS (UPDATE customer_vault.consent_ledger_head h SET last_id = $1, last_hash = $9"
								 "        WHERE h.ctid OPERATOR(pg_catalog.=) $10 RETURNING h.ctid)"
								 " INSERT INTO customer_vault.consent_state AS s"
								 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id, subject_hash)"
								 " VALUES ($2, $3, true, $5, $11, NULL, $1, $12)"
								 " ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE"
								 "   SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,"
								 "       withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id, subject_hash = EXCLUDED.subject_hash"
								 " RETURNING (SELECT h.ctid FROM h)",
								 12, types), v, nulls, 0);
		else
			imp_exec(CvSavedPlan(&plan_grant,
								 "WITH l AS (INSERT INTO customer_vault.consent_ledger"
								 "   (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash)"
								 "   VALUES ($1, $2, $3, 'grant', $4, $5, $6, $7, $8, $9)),"
								 " h AS (UPDATE customer_vault.consent_ledger_head h SET last_id = $1, last_hash = $9"
								 "        WHERE h.ctid OPERATOR(pg_catalog.=) $10 RETURNING h.ctid)"
								 " INSERT INTO customer_vault.consent_state AS s"
								 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)"
								 " VALUES ($2, $3, true, $5, $11, NULL, $1)"
								 " ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE"
								 "   SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,"
								 "       withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id"
								 " RETURNING (SELECT h.ctid FROM h)",
								 11, types), v, nulls, 0);
		tid = SPI_processed == 1 ?
			SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull) : (Datum) 0;
		if (SPI_processed != 1 || isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("consent ledger chain head not found")));
		ItemPointerCopy((ItemPointer) DatumGetPointer(tid), &h.tid);
		h.last_id = id;
		h.has_hash = true;
		memcpy(h.last_hash, hash, 32);
		imp_remember_head(&h.tid);
		imp_cache_head(&h);
	}
done:
	SPI_finish();
	imp_restore_user(&sw);
	PG_RETURN_INT64(id);
}

/*
 * CvWithdrawConsents: withdraw_consent for n granted consents at once (the
 * consents of a subject forget_subject erases), with one evidence object:
 * one hash-chained ledger entry each, made and chained here exactly as
 * _ledger_append() makes them (recorded_at of each its own clock time,
 * recorded_by the session user), written with the chain head and the state
 * in one statement, as the ledger's owner.
 */
void
CvWithdrawConsents(int n, char **subjects, char **purposes, Datum evidence)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_local = NULL;
	static SPIPlanPtr plan_state = NULL;
	Jsonb	   *ev = DatumGetJsonbP(evidence);
	CvAsOwner	sw;
	CvHead		h;
	char	   *who;
	NameData	nd;
	StringInfoData buf;
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *subj = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *purp = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *ats = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *prevs = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *prevnull = palloc0(sizeof(bool) * Max(n, 1));
	Datum	   *hashes = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *shs = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *shnull = palloc0(sizeof(bool) * Max(n, 1));
	bool		v2 = imp_v2_ready();
	Oid			types[12] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBOID, TIMESTAMPTZARRAYOID,
		NAMEOID, BYTEAARRAYOID, BYTEAARRAYOID, TIDOID, TIMESTAMPTZOID, BYTEAARRAYOID, INT2OID};
	Datum		v[12];
	bool		isnull;
	Datum		tid;
	int			i;
	int			dims[1];
	int			lbs[1] = {1};

	if (n <= 0)
		return;
	imp_become_owner(&sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	imp_head(&h);
	who = imp_recorded_by();
	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		int64		id = h.last_id + 1;
		TimestampTz ts = GetCurrentTimestamp();
		uint8		hash[32];
		uint8		sh[32];

		/* hash version 2: the subject's keyed hash, not the subject (0.5.0) */
		if (v2)
		{
			imp_subject_hash(subjects[i], strlen(subjects[i]), sh);
			shs[i] = imp_hash_datum(sh);
		}
		else
		{
			shs[i] = (Datum) 0;
			shnull[i] = true;
		}
		imp_entry_hash(&buf, &h, id, subjects[i], v2 ? sh : NULL, purposes[i], "withdraw", ev, false, 0, ts,
					   who, hash);
		ids[i] = Int64GetDatum(id);
		subj[i] = CStringGetTextDatum(subjects[i]);
		purp[i] = CStringGetTextDatum(purposes[i]);
		ats[i] = TimestampTzGetDatum(ts);
		prevnull[i] = !h.has_hash;
		prevs[i] = h.has_hash ? imp_hash_datum(h.last_hash) : (Datum) 0;
		hashes[i] = imp_hash_datum(hash);
		h.last_id = id;
		h.has_hash = true;
		memcpy(h.last_hash, hash, 32);
	}
	dims[0] = n;
	v[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	v[1] = PointerGetDatum(construct_array(subj, n, TEXTOID, -1, false, TYPALIGN_INT));
	v[2] = PointerGetDatum(construct_array(purp, n, TEXTOID, -1, false, TYPALIGN_INT));
	v[3] = evidence;
	v[4] = PointerGetDatum(construct_array(ats, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	namestrcpy(&nd, who);
	v[5] = NameGetDatum(&nd);
	v[6] = PointerGetDatum(construct_md_array(prevs, prevnull, 1, dims, lbs, BYTEAOID, -1, false, TYPALIGN_INT));
	v[7] = PointerGetDatum(construct_array(hashes, n, BYTEAOID, -1, false, TYPALIGN_INT));
	v[8] = PointerGetDatum(&h.tid);
	v[9] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	v[10] = PointerGetDatum(construct_md_array(shs, shnull, 1, dims, lbs, BYTEAOID, -1, false, TYPALIGN_INT));
	v[11] = Int16GetDatum(v2 ? 2 : 1);
	if (imp_cstate_is_citus())
	{
		/* a Citus reference table takes no writes together with local tables: the state apart */
		imp_exec(CvSavedPlan(&plan_local,
							 "WITH l AS (INSERT INTO customer_vault.consent_ledger"
							 "   (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash,"
							 "    subject_hash, hash_version)"
							 "   SELECT u.id, CASE WHEN $12 OPERATOR(pg_catalog.=) 1 THEN u.subject END, u.purpose, 'withdraw', $4, NULL,"
							 "          u.at, $6, u.prev, u.hash, u.sh, $12"
							 "     FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($5), pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($11)) u(id, subject, purpose, at, prev, hash, sh)),"
							 " h AS (UPDATE customer_vault.consent_ledger_head h"
							 "        SET last_id = ($1)[pg_catalog.array_upper($1, 1)], last_hash = ($8)[pg_catalog.array_upper($8, 1)]"
							 "        WHERE h.ctid OPERATOR(pg_catalog.=) $9 RETURNING h.ctid)"
							 " SELECT (SELECT h.ctid FROM h)",
							 12, types), v, NULL, 0);
		isnull = true;
		if (SPI_processed == 1)
			tid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (SPI_processed != 1 || isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("consent ledger chain head not found")));
		ItemPointerCopy((ItemPointer) DatumGetPointer(tid), &h.tid);
		imp_exec(CvSavedPlan(&plan_state,
							 "UPDATE customer_vault.consent_state s"
							 " SET granted = false, withdrawn_at = $4, ledger_id = u.id"
							 " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3)) u(id, subject, purpose)"
							 " WHERE s.subject OPERATOR(pg_catalog.=) u.subject AND s.purpose OPERATOR(pg_catalog.=) u.purpose",
							 4, (Oid[]) {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID}),
				 (Datum[]) {v[0], v[1], v[2], v[9]}, NULL, 0);
	}
	else
	{
		imp_exec(CvSavedPlan(&plan,
							 "WITH l AS (INSERT INTO customer_vault.consent_ledger"
							 "   (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash,"
							 "    subject_hash, hash_version)"
							 "   SELECT u.id, CASE WHEN $12 OPERATOR(pg_catalog.=) 1 THEN u.subject END, u.purpose, 'withdraw', $4, NULL,"
							 "          u.at, $6, u.prev, u.hash, u.sh, $12"
							 "     FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($5), pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($11)) u(id, subject, purpose, at, prev, hash, sh)),"
							 " h AS (UPDATE customer_vault.consent_ledger_head h"
							 "        SET last_id = ($1)[pg_catalog.array_upper($1, 1)], last_hash = ($8)[pg_catalog.array_upper($8, 1)]"
							 "        WHERE h.ctid OPERATOR(pg_catalog.=) $9 RETURNING h.ctid),"
							 " s AS (UPDATE customer_vault.consent_state s"
							 "        SET granted = false, withdrawn_at = $10, ledger_id = u.id"
							 "        FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3)) u(id, subject, purpose)"
							 "        WHERE s.subject OPERATOR(pg_catalog.=) u.subject AND s.purpose OPERATOR(pg_catalog.=) u.purpose)"
							 " SELECT (SELECT h.ctid FROM h)",
							 12, types), v, NULL, 0);
		isnull = true;
		if (SPI_processed == 1)
			tid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (SPI_processed != 1 || isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("consent ledger chain head not found")));
		ItemPointerCopy((ItemPointer) DatumGetPointer(tid), &h.tid);
	}
	imp_remember_head(&h.tid);
	imp_cache_head(&h);
	SPI_finish();
	imp_restore_user(&sw);
}

/* ---------- import_consents ---------- */

/* one row of an import, checked */
typedef struct CvImpRow
{
	char	   *subject;
	char	   *purpose;
	Jsonb	   *evidence;
	TimestampTz granted_at;
	bool		has_until;
	TimestampTz until;
	bool		skip;			/* a duplicate */
	bool		has_latest;		/* consent_state has a grant/withdrawal time */
	TimestampTz latest;			/* its latest grant or withdrawal */
	bool		in_state;		/* consent_state has a row for its subject and purpose */
	bool		state_row;		/* the batch's last row written for its subject and purpose */
	int64		id;				/* its ledger entry, once written */
	uint8		sh[32];			/* the subject's keyed hash (v2 batches) */
	Datum		subject_d;		/* subject, purpose and sh as SQL values, made once per batch */
	Datum		purpose_d;
	Datum		sh_d;
} CvImpRow;

/* the latest grant written in this batch for one subject and purpose */
typedef struct CvImpLatest
{
	uint8		key[32];		/* SHA-256 of subject and purpose */
	TimestampTz granted_at;
	int			last;			/* the row it was written by */
} CvImpLatest;

/* the columns of the import query, by name */
typedef struct CvImpCols
{
	int			subject;
	int			purpose;
	int			evidence;
	int			granted_at;
	int			valid_until;
} CvImpCols;

/* map the query's columns by name; refuse missing, unknown, doubled or mistyped ones */
static void
imp_map_columns(TupleDesc desc, CvImpCols *c)
{
	static const char *const names[5] = {"subject", "purpose", "evidence", "granted_at", "valid_until"};
	int		   *slots[5];
	int			i;

	slots[0] = &c->subject;
	slots[1] = &c->purpose;
	slots[2] = &c->evidence;
	slots[3] = &c->granted_at;
	slots[4] = &c->valid_until;
	for (i = 0; i < 5; i++)
		*slots[i] = 0;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		int			k;

		for (k = 0; k < 5; k++)
			if (strcmp(name, names[k]) == 0)
				break;
		if (k == 5)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("import query returns an unexpected column \"%s\"", name),
					 errdetail("The query must return the columns subject, purpose and evidence, and may return granted_at and valid_until.")));
		if (*slots[k] != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("import query returns column \"%s\" more than once", name)));
		*slots[k] = i + 1;
		if ((k <= 1 && att->atttypid != TEXTOID && att->atttypid != VARCHAROID) ||
			(k == 2 && att->atttypid != JSONBOID) ||
			(k >= 3 && att->atttypid != TIMESTAMPTZOID))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("import query column \"%s\" has type %s, expected %s", name,
							format_type_be(att->atttypid),
							k <= 1 ? "text" : k == 2 ? "jsonb" : "timestamp with time zone"),
					 errhint("Cast it in the query, e.g. %s::%s.", name,
							 k <= 1 ? "text" : k == 2 ? "jsonb" : "timestamptz")));
	}
	for (i = 0; i < 3; i++)
		if (*slots[i] == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("import query returns no column \"%s\"", names[i]),
					 errdetail("The query must return the columns subject, purpose and evidence, and may return granted_at and valid_until.")));
}

/* the key of a (subject, purpose) pair (text equality is byte equality) */
static void
imp_pair_key(StringInfo buf, const CvImpRow *r, uint8 out[32])
{
	resetStringInfo(buf);
	appendStringInfoString(buf, r->subject);
	appendStringInfoChar(buf, '\0');
	appendStringInfoString(buf, r->purpose);
	if (!cv_sha256((const uint8 *) buf->data, buf->len, out))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not compute SHA-256")));
}

/* a text[] (or other) array of n datums */
static Datum
imp_array(Datum *elems, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type, typlen, typbyval, typalign));
}

/* the purpose of an import row, looked up once per import (as the owner) */
static CvImpPurpose *
imp_purpose(HTAB *purposes, const char *name)
{
	CvImpPurpose *p;
	bool		found;
	char		key[64];

	if (strlen(name) >= sizeof(key))
		return NULL;
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	p = hash_search(purposes, key, HASH_ENTER, &found);
	if (!found)
		imp_lookup_purpose(name, p);
	return p;
}

/*
 * Whether a replica session changes nothing on consent_state but leaving out
 * the per-row checks of its foreign key to purposes.  Any other trigger
 * enabled for origin sessions only (one a DBA added, another key) must fire;
 * one enabled for replica sessions only must not (review 24, LOW-1: the
 * import fired a DBA's ENABLE REPLICA trigger); one enabled always, other
 * than the extension's own statement trigger, would see the setting as
 * replica and may act on it; and rules are enabled per session role too.
 * In each of these cases the import keeps the ordinary path.  The
 * extension's own row trigger (consent_state_changed_row, replica only)
 * firing is harmless: it marks the change as the statement trigger does.
 */
static bool
imp_state_skips_only_purpose_key(void)
{
	Oid			nsp = get_namespace_oid(CV_SCHEMA, false);
	Oid			cstate = get_relname_relid("consent_state", nsp);
	Oid			purposes = get_relname_relid("purposes", nsp);
	Oid			changed = InvalidOid;
	Relation	rel;
	bool		ok = true;
	int			i;

	if (!OidIsValid(cstate) || !OidIsValid(purposes))
		return false;
	{
		List	   *fname = list_make2(makeString(CV_SCHEMA), makeString("_consent_changed"));

		changed = LookupFuncName(fname, 0, NULL, true);
		list_free(fname);
	}
	rel = table_open(cstate, AccessShareLock);
	if (rel->rd_rules != NULL)
		ok = false;
	if (rel->trigdesc != NULL)
		for (i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];
			bool		own = OidIsValid(changed) && t->tgfoid == changed &&
				(strcmp(t->tgname, "consent_state_changed") == 0 ||
				 strcmp(t->tgname, "consent_state_changed_row") == 0);

			if (t->tgenabled == TRIGGER_DISABLED || own)
				continue;
			if (t->tgenabled == TRIGGER_FIRES_ON_ORIGIN &&
				RI_FKey_trigger_type(t->tgfoid) == RI_TRIGGER_FK && t->tgconstrrelid == purposes)
				continue;
			ok = false;
		}
	table_close(rel, AccessShareLock);
	return ok;
}

/*
 * The foreign key consent_state.purpose -> purposes for one batch, checked
 * once instead of once per row: each distinct purpose of the batch's rows is
 * locked FOR KEY SHARE, as the key's own check locks it (a concurrent DELETE
 * of the purpose waits for this transaction to end and then cascades to the
 * rows it wrote; a purpose deleted or renamed since the rows were checked is
 * an error here, 23503).  Returns true when the state statement may then run
 * with session_replication_role = replica, which leaves out only the key's
 * per-row check trigger (enabled for origin sessions): consent_state's own
 * triggers fire ALWAYS or in replica sessions.  Only when the ledger's owner,
 * acting here, is a superuser (who may set the setting itself), consent_state
 * is not a Citus reference table and has no other trigger that a replica
 * session would leave out; otherwise false, after the same locks, and the
 * key's trigger checks every row as before.  The key stays declared, for
 * every other writer.
 */
static bool
imp_lock_purposes(char **purp, int n)
{
	static SPIPlanPtr plan = NULL;
	const char **seen = palloc(Max(n, 1) * sizeof(char *));
	Datum	   *names = palloc(Max(n, 1) * sizeof(Datum));
	int			k = 0;
	int			i;
	int			j;

	for (i = 0; i < n; i++)
	{
		/* the distinct purposes (few; the newest seen compared first) */
		for (j = k - 1; j >= 0; j--)
			if (strcmp(seen[j], purp[i]) == 0)
				break;
		if (j < 0)
		{
			seen[k] = purp[i];
			names[k++] = CStringGetTextDatum(purp[i]);
		}
	}
	imp_exec(CvSavedPlan(&plan,
						 "SELECT p.purpose FROM customer_vault.purposes p"
						 " WHERE p.purpose OPERATOR(pg_catalog.=) ANY ($1 COLLATE \"C\")"
						 " FOR KEY SHARE OF p",
						 1, (Oid[]) {TEXTARRAYOID}),
			 (Datum[]) {imp_array(names, NULL, k, TEXTOID)}, NULL, 0);
	if (SPI_processed != (uint64) k)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("a purpose of the import was deleted or renamed during it"),
				 errhint("Run the import again.")));
	SPI_freetuptable(SPI_tuptable);
	return superuser_arg(GetUserId()) && !imp_cstate_is_citus() && imp_state_skips_only_purpose_key();
}

/*
 * consent_state for the rows of a batch just appended to the ledger, the last
 * row written for each subject and purpose (the newest grant of the batch):
 * with existing, the rows whose subject and purpose it has a row for (the
 * grant replaces it unless the state is newer), else the others, inserted
 * plainly.  The batch holds the chain head since before it read which rows
 * the state has (imp_write_batch), and every row the state gains comes with
 * an append under that lock, so no other session adds one of these before
 * this commits; a row added without an append (by hand, say) fails the
 * insert (imp_insert_state) instead of being overwritten.  Plain inserts
 * spare the speculative insertion of ON CONFLICT and the sort of DISTINCT
 * ON: about 40% of the state's cost in a bulk import of new subjects.
 */
static void
imp_write_state(const CvImpRow *rows, int n, bool v2, bool existing)
{
	Datum	   *d_subj = palloc(n * sizeof(Datum));
	Datum	   *d_purp = palloc(n * sizeof(Datum));
	Datum	   *d_until = palloc(n * sizeof(Datum));
	bool	   *n_until = palloc(n * sizeof(bool));
	Datum	   *d_granted = palloc(n * sizeof(Datum));
	Datum	   *d_id = palloc(n * sizeof(Datum));
	Datum	   *d_sh = palloc(n * sizeof(Datum));
	Oid			types[6];
	Datum		v[6];
	int			k = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (rows[i].skip || !rows[i].state_row || rows[i].in_state != existing)
			continue;
		d_subj[k] = rows[i].subject_d;
		d_purp[k] = rows[i].purpose_d;
		d_until[k] = TimestampTzGetDatum(rows[i].until);
		n_until[k] = !rows[i].has_until;
		d_granted[k] = TimestampTzGetDatum(rows[i].granted_at);
		d_id[k] = Int64GetDatum(rows[i].id);
		if (v2)
			d_sh[k] = rows[i].sh_d;
		k++;
	}
	if (k == 0)
		return;
	types[0] = TEXTARRAYOID;
	types[1] = TEXTARRAYOID;
	types[2] = get_array_type(TIMESTAMPTZOID);
	types[3] = get_array_type(TIMESTAMPTZOID);
	types[4] = INT8ARRAYOID;
	types[5] = BYTEAARRAYOID;
	v[0] = imp_array(d_subj, NULL, k, TEXTOID);
	v[1] = imp_array(d_purp, NULL, k, TEXTOID);
	v[2] = imp_array(d_until, n_until, k, TIMESTAMPTZOID);
	v[3] = imp_array(d_granted, NULL, k, TIMESTAMPTZOID);
	v[4] = imp_array(d_id, NULL, k, INT8OID);
	v[5] = v2 ? imp_array(d_sh, NULL, k, BYTEAOID) : (Datum) 0;
	if (existing && v2)
		imp_exec(CvSavedPlan(&plan_state_many2,
							 "INSERT INTO customer_vault.consent_state AS s"
							 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id, subject_hash)"
							 " SELECT u.s, u.p, true, u.v, u.g, NULL::pg_catalog.timestamptz, u.id, u.sh"
							 "   FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p, pg_catalog.unnest($3) AS v,"
							 "                pg_catalog.unnest($4) AS g, pg_catalog.unnest($5) AS id, pg_catalog.unnest($6) AS sh) u"
							 " ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE"
							 "   SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,"
							 "       withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id, subject_hash = EXCLUDED.subject_hash"
							 " WHERE pg_catalog.timestamptz_le(COALESCE(GREATEST(s.granted_at, s.withdrawn_at), '-infinity'),"
							 "                                 EXCLUDED.granted_at)",
							 6, types), v, NULL, 0);
	else if (existing)
		imp_exec(CvSavedPlan(&plan_state_many,
							 "INSERT INTO customer_vault.consent_state AS s"
							 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)"
							 " SELECT u.s, u.p, true, u.v, u.g, NULL::pg_catalog.timestamptz, u.id"
							 "   FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p, pg_catalog.unnest($3) AS v,"
							 "                pg_catalog.unnest($4) AS g, pg_catalog.unnest($5) AS id) u"
							 " ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE"
							 "   SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,"
							 "       withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id"
							 " WHERE pg_catalog.timestamptz_le(COALESCE(GREATEST(s.granted_at, s.withdrawn_at), '-infinity'),"
							 "                                 EXCLUDED.granted_at)",
							 5, types), v, NULL, 0);
	else
		imp_insert_state(v2, types, v);
	if (SPI_processed > (uint64) k)
		elog(ERROR, "consent_state took more rows than the import gave it");
}

/*
 * The plain insert of imp_write_state.  A row of consent_state for one of
 * these subjects and purposes can only appear meanwhile if someone wrote it
 * without a ledger entry (by hand, or replication); that fails here with an
 * error that says so (and does not name the subject, as the primary key's
 * would).
 */
static void
imp_insert_state(bool v2, Oid *types, Datum *v)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		imp_insert_state_exec(v2, types, v);
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		if (ed->sqlerrcode != ERRCODE_UNIQUE_VIOLATION || ed->constraint_name == NULL ||
			strcmp(ed->constraint_name, "consent_state_pkey") != 0)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("consent_state gained a row for a subject and purpose of the import while it ran"),
				 errdetail("Rows of customer_vault.consent_state are written with a ledger entry; this one was written without (by hand, or by replication)."),
				 errhint("Run the import again.")));
	}
	PG_END_TRY();
}

static void
imp_insert_state_exec(bool v2, Oid *types, Datum *v)
{
	if (v2)
		imp_exec(CvSavedPlan(&plan_state_new2,
							 "INSERT INTO customer_vault.consent_state"
							 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id, subject_hash)"
							 " SELECT u.s, u.p, true, u.v, u.g, NULL::pg_catalog.timestamptz, u.id, u.sh"
							 "   FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p, pg_catalog.unnest($3) AS v,"
							 "                pg_catalog.unnest($4) AS g, pg_catalog.unnest($5) AS id, pg_catalog.unnest($6) AS sh) u",
							 6, types), v, NULL, 0);
	else
		imp_exec(CvSavedPlan(&plan_state_new,
							 "INSERT INTO customer_vault.consent_state"
							 " (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)"
							 " SELECT u.s, u.p, true, u.v, u.g, NULL::pg_catalog.timestamptz, u.id"
							 "   FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p, pg_catalog.unnest($3) AS v,"
							 "                pg_catalog.unnest($4) AS g, pg_catalog.unnest($5) AS id) u",
							 5, types), v, NULL, 0);
}

/*
 * Writes one batch of checked rows as the owner: locks the chain head
 * before its checks, so that what they read cannot change before the batch
 * is appended (every grant and withdrawal, and every row consent_state gains,
 * comes with an append under that lock; in READ COMMITTED each check then
 * reads what committed before the lock was granted, in REPEATABLE READ the
 * lock fails on a head moved since the snapshot).  Then marks rows whose
 * (subject, purpose, evidence) is already a grant in the ledger (or earlier
 * in the batch; evidence compared as jsonb, so {"a":1} and {"a":1.0} are the
 * same), skips rows granted before the latest grant or withdrawal already
 * recorded for their subject and purpose (consent_state, or an earlier row
 * of this batch: appended after it, such a row would read as a newer grant;
 * counted in *stale), then appends the rest, chained, and updates
 * consent_state.  Returns the rows written.
 */
static int64
imp_write_batch(CvImpRow *rows, int n, bool allow_dups, TimestampTz ts, const char *who,
				MemoryContext scratch, int64 *stale)
{
	MemoryContext old = MemoryContextSwitchTo(scratch);
	StringInfoData buf;
	Datum	   *d_subj = palloc(n * sizeof(Datum));
	Datum	   *d_purp = palloc(n * sizeof(Datum));
	Datum	   *d_ev = palloc(n * sizeof(Datum));
	Datum	   *d_until = palloc(n * sizeof(Datum));
	bool	   *n_until = palloc(n * sizeof(bool));
	Datum	   *d_id = palloc(n * sizeof(Datum));
	Datum	   *d_prev = palloc(n * sizeof(Datum));
	bool	   *n_prev = palloc(n * sizeof(bool));
	Datum	   *d_hash = palloc(n * sizeof(Datum));
	Datum	   *d_sh = palloc(n * sizeof(Datum));
	char	  **c_purp = palloc(n * sizeof(char *));
	int			m = 0;
	int			i;
	CvHead		h;
	HASHCTL		ctl;
	HTAB	   *batch_latest;
	bool		v2 = imp_v2_ready();
	int			replica_nest = 0;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		rows[i].subject_d = d_subj[i] = CStringGetTextDatum(rows[i].subject);
		rows[i].purpose_d = d_purp[i] = CStringGetTextDatum(rows[i].purpose);
		d_ev[i] = JsonbPGetDatum(rows[i].evidence);
		/* the ledger stores each subject as its keyed hash (hash version 2) */
		if (v2)
		{
			imp_subject_hash(rows[i].subject, strlen(rows[i].subject), rows[i].sh);
			rows[i].sh_d = d_sh[i] = imp_hash_datum(rows[i].sh);
		}
	}
	/*
	 * The head lock, after the subject hashes: the first may make the subject
	 * hash key, which grant_consent also makes before it takes the head (the
	 * other order deadlocked with it, REV29; test import_key_order).
	 */
	imp_head(&h);

	/*
	 * The rows whose subject and purpose consent_state has, with the latest
	 * grant or withdrawal it holds for them.  Under the head lock no other
	 * session adds one before this batch is written.
	 */
	{
		Oid			types[2] = {TEXTARRAYOID, TEXTARRAYOID};
		Datum		v[2];
		uint64		k;

		v[0] = imp_array(d_subj, NULL, n, TEXTOID);
		v[1] = imp_array(d_purp, NULL, n, TEXTOID);
		imp_exec(CvSavedPlan(&plan_latest,
						  "SELECT u.i::pg_catalog.int4, GREATEST(s.granted_at, s.withdrawn_at)"
						  "  FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p,"
						  "               pg_catalog.generate_series(1, pg_catalog.cardinality($1)) AS i) u"
						  "  JOIN customer_vault.consent_state s"
						  "    ON s.subject OPERATOR(pg_catalog.=) (u.s COLLATE \"C\")"
						  "   AND s.purpose OPERATOR(pg_catalog.=) (u.p COLLATE \"C\")",
						  2, types), v, NULL, 0);
		for (k = 0; k < SPI_processed; k++)
		{
			bool		isnull;
			int32		idx = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1, &isnull));
			Datum		latest = SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 2, &isnull);

			if (idx < 1 || idx > n)
				elog(ERROR, "import row index %d out of range", idx);
			rows[idx - 1].in_state = true;
			if (!isnull)
			{
				rows[idx - 1].has_latest = true;
				rows[idx - 1].latest = DatumGetTimestampTz(latest);
			}
		}
		SPI_freetuptable(SPI_tuptable);
	}
	if (!allow_dups)
	{
		/* earlier in this batch, or already in the ledger (earlier imports, grant_consent, earlier batches) */
		{
			Oid			types[3] = {TEXTARRAYOID, TEXTARRAYOID, InvalidOid};
			Datum		v[3];
			uint64		k;

			types[2] = get_array_type(JSONBOID);
			v[0] = imp_array(d_subj, NULL, n, TEXTOID);
			v[1] = imp_array(d_purp, NULL, n, TEXTOID);
			v[2] = imp_array(d_ev, NULL, n, JSONBOID);
			if (v2)
			{
				Oid			types4[4] = {types[0], types[1], types[2], BYTEAARRAYOID};
				Datum		v4[4] = {v[0], v[1], v[2], imp_array(d_sh, NULL, n, BYTEAOID)};

				/* entries of either form: the plain subject (before 0.5.0) or its hash */
				imp_exec(CvSavedPlan(&plan_dups2,
									 "SELECT u.i::pg_catalog.int4"
									 "  FROM (SELECT w.s, w.p, w.e, w.h, w.i, pg_catalog.row_number()"
									 "               OVER (PARTITION BY w.s COLLATE \"C\", w.p COLLATE \"C\", w.e ORDER BY w.i) AS rn"
									 "          FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p,"
									 "                       pg_catalog.unnest($3) AS e, pg_catalog.unnest($4) AS h,"
									 "                       pg_catalog.generate_series(1, pg_catalog.cardinality($1)) AS i) w) u"
									 " WHERE u.rn OPERATOR(pg_catalog.>) 1"
									 "    OR EXISTS (SELECT FROM customer_vault.consent_ledger l"
									 "                WHERE l.subject_hash OPERATOR(pg_catalog.=) u.h"
									 "                  AND l.purpose OPERATOR(pg_catalog.=) u.p"
									 "                  AND l.action OPERATOR(pg_catalog.=) 'grant'"
									 "                  AND l.evidence OPERATOR(pg_catalog.=) u.e)"
									 "    OR EXISTS (SELECT FROM customer_vault.consent_ledger l"
									 "                WHERE l.subject OPERATOR(pg_catalog.=) u.s"
									 "                  AND l.purpose OPERATOR(pg_catalog.=) u.p"
									 "                  AND l.action OPERATOR(pg_catalog.=) 'grant'"
									 "                  AND l.evidence OPERATOR(pg_catalog.=) u.e)",
									 4, types4), v4, NULL, 0);
			}
			else
			imp_exec(CvSavedPlan(&plan_dups,
							  "SELECT u.i::pg_catalog.int4"
							  "  FROM (SELECT w.s, w.p, w.e, w.i, pg_catalog.row_number()"
							  "               OVER (PARTITION BY w.s COLLATE \"C\", w.p COLLATE \"C\", w.e ORDER BY w.i) AS rn"
							  "          FROM (SELECT pg_catalog.unnest($1) AS s, pg_catalog.unnest($2) AS p,"
							  "                       pg_catalog.unnest($3) AS e,"
							  "                       pg_catalog.generate_series(1, pg_catalog.cardinality($1)) AS i) w) u"
							  " WHERE u.rn OPERATOR(pg_catalog.>) 1"
							  "    OR EXISTS (SELECT FROM customer_vault.consent_ledger l"
							  "                WHERE l.subject OPERATOR(pg_catalog.=) u.s"
							  "                  AND l.purpose OPERATOR(pg_catalog.=) u.p"
							  "                  AND l.action OPERATOR(pg_catalog.=) 'grant'"
							  "                  AND l.evidence OPERATOR(pg_catalog.=) u.e)",
							  3, types), v, NULL, 0);
			for (k = 0; k < SPI_processed; k++)
			{
				bool		isnull;
				int32		idx = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1, &isnull));

				rows[idx - 1].skip = true;
			}
			SPI_freetuptable(SPI_tuptable);
		}
	}

	/* a row granted before the latest grant or withdrawal recorded for its subject and purpose */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 32;
	ctl.entrysize = sizeof(CvImpLatest);
	ctl.hcxt = scratch;
	batch_latest = hash_create("customer_vault import latest", n, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (i = 0; i < n; i++)
	{
		uint8		key[32];
		bool		found;
		CvImpLatest *e;

		if (rows[i].skip)
			continue;
		imp_pair_key(&buf, &rows[i], key);
		e = hash_search(batch_latest, key, HASH_FIND, &found);
		if ((rows[i].has_latest && rows[i].granted_at < rows[i].latest) ||
			(e != NULL && rows[i].granted_at < e->granted_at))
		{
			rows[i].skip = true;
			(*stale)++;
			continue;
		}
		e = hash_search(batch_latest, key, HASH_ENTER, &found);
		/* the state takes the pair's last row written (the newest grant: none is older) */
		if (found)
			rows[e->last].state_row = false;
		e->granted_at = rows[i].granted_at;
		e->last = i;
		rows[i].state_row = true;
	}

	/* the entries, chained */
	for (i = 0; i < n; i++)
	{
		uint8		hash[32];
		int64		id;

		if (rows[i].skip)
			continue;
		id = h.last_id + 1;
		rows[i].id = id;
		imp_entry_hash(&buf, &h, id, rows[i].subject, v2 ? rows[i].sh : NULL, rows[i].purpose, "grant",
					   rows[i].evidence,
					   rows[i].has_until, rows[i].until, ts, who, hash);
		d_id[m] = Int64GetDatum(id);
		d_subj[m] = rows[i].subject_d;
		if (v2)
			d_sh[m] = rows[i].sh_d;
		d_purp[m] = rows[i].purpose_d;
		c_purp[m] = rows[i].purpose;
		d_ev[m] = JsonbPGetDatum(rows[i].evidence);
		d_until[m] = TimestampTzGetDatum(rows[i].until);
		n_until[m] = !rows[i].has_until;
		if (h.has_hash)
		{
			d_prev[m] = imp_hash_datum(h.last_hash);
			n_prev[m] = false;
		}
		else
		{
			d_prev[m] = (Datum) 0;
			n_prev[m] = true;
		}
		d_hash[m] = imp_hash_datum(hash);
		h.last_id = id;
		h.has_hash = true;
		memcpy(h.last_hash, hash, 32);
		m++;
	}
	if (m > 0)
	{
		Oid			types[9];
		Datum		v[9];
		NameData	nd;

		types[0] = INT8ARRAYOID;
		types[1] = TEXTARRAYOID;
		types[2] = TEXTARRAYOID;
		types[3] = get_array_type(JSONBOID);
		types[4] = get_array_type(TIMESTAMPTZOID);
		types[5] = BYTEAARRAYOID;
		types[6] = BYTEAARRAYOID;
		types[7] = TIMESTAMPTZOID;
		types[8] = NAMEOID;
		v[0] = imp_array(d_id, NULL, m, INT8OID);
		v[1] = imp_array(d_subj, NULL, m, TEXTOID);
		v[2] = imp_array(d_purp, NULL, m, TEXTOID);
		v[3] = imp_array(d_ev, NULL, m, JSONBOID);
		v[4] = imp_array(d_until, n_until, m, TIMESTAMPTZOID);
		v[5] = imp_array(d_prev, n_prev, m, BYTEAOID);
		v[6] = imp_array(d_hash, NULL, m, BYTEAOID);
		v[7] = TimestampTzGetDatum(ts);
		namestrcpy(&nd, who);
		v[8] = NameGetDatum(&nd);
		if (v2)
		{
			Datum		shs = imp_array(d_sh, NULL, m, BYTEAOID);
			Datum		v2v[9];

			/* $2: the subject hashes (the plain subjects stay in consent_state) */
			memcpy(v2v, v, sizeof(v2v));
			v2v[1] = shs;
			types[1] = BYTEAARRAYOID;
			imp_exec(CvSavedPlan(&plan_ledger_many2,
								 "INSERT INTO customer_vault.consent_ledger"
								 " (id, subject, subject_hash, hash_version, purpose, action, evidence, valid_until,"
								 "  recorded_at, recorded_by, prev_hash, hash)"
								 " SELECT u.id, NULL, u.sh, 2, u.p, 'grant', u.e, u.v, $8, $9, u.ph, u.h"
								 "   FROM (SELECT pg_catalog.unnest($1) AS id, pg_catalog.unnest($2) AS sh, pg_catalog.unnest($3) AS p,"
								 "                pg_catalog.unnest($4) AS e, pg_catalog.unnest($5) AS v, pg_catalog.unnest($6) AS ph,"
								 "                pg_catalog.unnest($7) AS h) u",
								 9, types), v2v, NULL, 0);
			types[1] = TEXTARRAYOID;
		}
		else
			imp_exec(CvSavedPlan(&plan_ledger_many,
								 "INSERT INTO customer_vault.consent_ledger"
								 " (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash)"
								 " SELECT u.id, u.s, u.p, 'grant', u.e, u.v, $8, $9, u.ph, u.h"
								 "   FROM (SELECT pg_catalog.unnest($1) AS id, pg_catalog.unnest($2) AS s, pg_catalog.unnest($3) AS p,"
								 "                pg_catalog.unnest($4) AS e, pg_catalog.unnest($5) AS v, pg_catalog.unnest($6) AS ph,"
								 "                pg_catalog.unnest($7) AS h) u",
								 9, types), v, NULL, 0);
		imp_head_write(&h);

		/*
		 * The state: the newest imported grant per subject and purpose,
		 * unless the state is newer.  Its purposes' foreign key checked once
		 * for the batch (imp_lock_purposes), not by a query per row.
		 */
		if (imp_lock_purposes(c_purp, m))
		{
			replica_nest = NewGUCNestLevel();
			(void) set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
		}
		imp_write_state(rows, n, v2, true);
		imp_write_state(rows, n, v2, false);
		if (replica_nest > 0)
			AtEOXact_GUC(false, replica_nest);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(scratch);
	return m;
}

PG_FUNCTION_INFO_V1(cv_import_consents);

/*
 * import_consents(query, allow_duplicates): records the opt-ins the query
 * returns (subject, purpose, evidence[, granted_at][, valid_until]) in one
 * pass.  The query runs with the caller's rights and settings; the writes
 * run as the ledger's owner.  All or nothing: the first bad row stops the
 * import with its row number.  Rows whose subject, purpose and evidence
 * (jsonb equality) are already a grant in the ledger are skipped (and
 * counted in a NOTICE) unless allow_duplicates; rows granted before the
 * latest grant or withdrawal recorded for their subject and purpose are
 * always skipped (another NOTICE).  Queries that modify data are refused.
 * Returns the entries written.
 */
Datum
cv_import_consents(PG_FUNCTION_ARGS)
{
	char	   *query;
	bool		allow_dups;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz ts = GetCurrentTimestamp();
	char	   *who = imp_recorded_by();
	SPIPlanPtr	plan;
	Portal		portal;
	CvImpCols	cols;
	HASHCTL		ctl;
	HTAB	   *purposes;
	MemoryContext batch_cxt;
	MemoryContext scratch;
	MemoryContext fn_cxt = CurrentMemoryContext;
	int64		rowno = 0;
	int64		written = 0;
	int64		skipped = 0;
	int64		stale = 0;

	/* the ledger is the coordinator's: not on a Citus worker */
	CvRefuseOnCitusWorker("import_consents()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("allow_duplicates must not be null")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	allow_dups = PG_GETARG_BOOL(1);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 64;
	ctl.entrysize = sizeof(CvImpPurpose);
	ctl.hcxt = fn_cxt;
	purposes = hash_create("customer_vault import purposes", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	batch_cxt = AllocSetContextCreate(fn_cxt, "customer_vault import batch", ALLOCSET_DEFAULT_SIZES);
	scratch = AllocSetContextCreate(fn_cxt, "customer_vault import write", ALLOCSET_DEFAULT_SIZES);

	/* the caller's query, as the caller */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare_cursor(query, 0, NULL, CURSOR_OPT_NO_SCROLL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan) ||
		((CachedPlanSource *) linitial(SPI_plan_get_plan_sources(plan)))->commandTag != CMDTAG_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("import query must be a single query that returns rows"),
				 errhint("Use a SELECT, VALUES or TABLE query returning subject, purpose, evidence, granted_at and valid_until.")));
	/* a SELECT: data-modifying statements belong before the import, not in it */
	{
		ListCell   *lc;

		foreach(lc, ((CachedPlanSource *) linitial(SPI_plan_get_plan_sources(plan)))->query_list)
		{
			Query	   *q = lfirst_node(Query, lc);

			if (q->commandType != CMD_SELECT || q->utilityStmt != NULL || q->hasModifyingCTE)
				ereport(ERROR,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("import query must not modify data"),
						 errdetail("The query contains INSERT, UPDATE, DELETE or MERGE (in a WITH clause, for example)."),
						 errhint("Run data-modifying statements before the import, not in its query.")));
		}
	}
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, false);
	imp_map_columns(portal->tupDesc, &cols);

	for (;;)
	{
		CvImpRow   *rows;
		int			n;
		int			i;
		TupleDesc	desc;
		SPITupleTable *tt;
		CvAsOwner	sw;

		SPI_cursor_fetch(portal, true, IMPORT_BATCH);
		if (SPI_processed == 0)
			break;
		n = (int) SPI_processed;
		tt = SPI_tuptable;
		desc = tt->tupdesc;
		MemoryContextSwitchTo(batch_cxt);
		rows = palloc0(n * sizeof(CvImpRow));

		/* purposes are read as the owner (the caller may not see them) */
		imp_become_owner(&sw);
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			CvImpRow   *r = &rows[i];
			bool		isnull;
			Datum		d;
			CvImpPurpose *p;

			rowno++;
			d = SPI_getbinval(tup, desc, cols.subject, &isnull);
			r->subject = isnull ? NULL : TextDatumGetCString(d);
			if (r->subject == NULL || r->subject[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("import row " INT64_FORMAT ": subject must not be null or empty", rowno)));
			imp_check_subject_len(strlen(r->subject), rowno);
			d = SPI_getbinval(tup, desc, cols.purpose, &isnull);
			r->purpose = isnull ? NULL : TextDatumGetCString(d);
			if (r->purpose == NULL || r->purpose[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("import row " INT64_FORMAT ": purpose must not be null or empty", rowno)));
			p = imp_purpose(purposes, r->purpose);
			if (p == NULL || !p->exists)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("import row " INT64_FORMAT ": purpose %s does not exist", rowno,
								quote_literal_cstr(r->purpose)),
						 errhint("Define it with customer_vault.define_purpose().")));
			if (!p->consent)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("import row " INT64_FORMAT ": purpose %s does not rest on consent", rowno,
								quote_literal_cstr(r->purpose)),
						 errhint("Record consent only for consent-based purposes.")));
			d = SPI_getbinval(tup, desc, cols.evidence, &isnull);
			r->evidence = isnull ? NULL : DatumGetJsonbPCopy(d);
			if (!imp_evidence_ok(r->evidence))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("import row " INT64_FORMAT ": evidence must be a non-empty JSON object", rowno),
						 errhint("Record what was shown, when and through which channel, e.g. {\"form\": \"signup-v3\", \"channel\": \"web\"}.")));
			r->granted_at = now;
			if (cols.granted_at)
			{
				d = SPI_getbinval(tup, desc, cols.granted_at, &isnull);
				if (!isnull)
				{
					r->granted_at = DatumGetTimestampTz(d);
					if (TIMESTAMP_NOT_FINITE(r->granted_at))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("import row " INT64_FORMAT ": granted_at must be a finite time", rowno)));
					if (r->granted_at > now)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("import row " INT64_FORMAT ": granted_at must not be in the future", rowno)));
				}
			}
			r->has_until = false;
			if (cols.valid_until)
			{
				d = SPI_getbinval(tup, desc, cols.valid_until, &isnull);
				if (!isnull)
				{
					r->has_until = true;
					r->until = DatumGetTimestampTz(d);
					if (TIMESTAMP_NOT_FINITE(r->until))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("import row " INT64_FORMAT ": valid_until must be a finite time", rowno),
								 errhint("Leave it NULL for consent without an end date (the purpose's consent lifetime still applies).")));
					if (r->until <= r->granted_at)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("import row " INT64_FORMAT ": valid_until must be after granted_at", rowno)));
				}
			}
			imp_cap_until(p, r->granted_at, &r->has_until, &r->until);
		}
		SPI_freetuptable(tt);
		MemoryContextSwitchTo(fn_cxt);

		written += imp_write_batch(rows, n, allow_dups, ts, who, scratch, &stale);
		imp_restore_user(&sw);
		skipped = rowno - written - stale;
		MemoryContextReset(batch_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	if (skipped > 0)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " imported rows were already recorded and were skipped",
						skipped, rowno),
				 errhint("Pass allow_duplicates => true to record them again.")));
	if (stale > 0)
		ereport(NOTICE,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " imported rows were granted before the latest grant or withdrawal recorded for their subject and purpose and were skipped",
						stale, rowno),
				 errdetail("Appended to the ledger after that entry, they would read as newer grants.")));
	PG_RETURN_INT64(written);
}
