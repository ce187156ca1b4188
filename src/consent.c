/*-------------------------------------------------------------------------
 * consent.c
 *		has_consent() and may_process(), fast enough for a row-level security
 *		policy, and the cache behind them.
 *
 * The cache (per backend) holds the purposes, the roles allowed each, and,
 * per purpose, the subjects holding a live opt-in (granted, with its end
 * date), read with the query's own snapshot.  It answers a query only from
 * the state that query's snapshot sees:
 *
 *  - It is tagged with the snapshot it was read under; a query whose
 *    snapshot has the same identity uses it as it is.
 *  - It may serve a later snapshot only when no change to the consent tables
 *    can have become visible in between.  Writers bump a shared "started"
 *    counter before their commit becomes visible (XACT_EVENT_PRE_COMMIT) and
 *    a "finished" counter after (XACT_EVENT_COMMIT/ABORT).  The cache is
 *    marked reusable only when, right after being read, no writer was in
 *    flight (started == finished) and no transaction at all had completed
 *    since the snapshot was taken (xactCompletionCount); a later snapshot
 *    with at least that completion count may then use it while "started"
 *    has not moved.
 *  - A transaction that changed the consent tables itself uses a cache only
 *    for the exact snapshot (command id included) it was read under.
 *
 * Without shared_preload_libraries (no counters) or on PostgreSQL 13 (no
 * completion count), the cache lives for one snapshot only.  Memory is
 * bounded by customer_vault.consent_cache_size subjects per backend (about
 * 64 bytes plus the subject's length each); a purpose with more live
 * consents is answered by an index probe per call instead.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#if PG_VERSION_NUM >= 170000
#define CV_COMPLETION_COUNT() (TransamVariables->xactCompletionCount)
#elif PG_VERSION_NUM >= 140000
#define CV_COMPLETION_COUNT() (ShmemVariableCache->xactCompletionCount)
#endif

/* columns of the consent tables, in table order */
#define Anum_purpose_name			1
#define Anum_purpose_basis			2
#define Anum_prole_role				1
#define Anum_prole_purpose			2
#define Anum_cstate_subject			1
#define Anum_cstate_purpose			2
#define Anum_cstate_granted			3
#define Anum_cstate_valid_until		4

int			cv_consent_cache_size = 1000000;

/* shared counters of consent-changing commits */
typedef struct CvConsentShared
{
	pg_atomic_uint64 started;
	pg_atomic_uint64 finished;
} CvConsentShared;

static CvConsentShared *cv_shared = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this transaction changed the consent tables / bumped "started" */
static bool cv_consent_dirty = false;
static bool cv_consent_bumped = false;

/* one subject with a live opt-in, in an arena */
typedef struct CvSubjectConsent
{
	struct CvSubjectConsent *next;	/* same 64-bit hash */
	TimestampTz valid_until;
	bool		has_until;
	char		subject[FLEXIBLE_ARRAY_MEMBER];
} CvSubjectConsent;

typedef struct CvSubjectSlot
{
	uint64		hash;			/* hash key */
	CvSubjectConsent *chain;
} CvSubjectSlot;

#define CV_PURPOSE_UNLOADED	0
#define CV_PURPOSE_LOADED	1
#define CV_PURPOSE_PROBE	2	/* too many consents to cache: probe the index */

typedef struct CvPurpose
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		requires_consent;
	int			nroles;
	Oid		   *roles;
	Oid			checked_user;	/* memo of the role check */
	bool		user_allowed;
	int			state;
	HTAB	   *subjects;		/* CvSubjectSlot by hash of the subject */
} CvPurpose;

/* identity of a snapshot, as far as visibility goes */
typedef struct CvSnapIdent
{
	TransactionId xmin;
	TransactionId xmax;
	uint32		xcnt;
	CommandId	curcid;
	uint64		completion;
	LocalTransactionId lxid;
	TimestampTz stmt_start;
} CvSnapIdent;

static MemoryContext cv_consent_cxt = NULL;
static HTAB *cv_purposes = NULL;
static bool cv_cache_valid = false;
static CvSnapIdent cv_cache_ident;
static bool cv_cache_reusable = false;
static uint64 cv_cache_tag_finished;
static uint64 cv_cache_tag_completion;
static int	cv_cache_subjects = 0;

/* arena for subject entries */
static char *cv_arena_ptr = NULL;
static Size cv_arena_left = 0;

static Oid	cv_purposes_relid = InvalidOid;
static Oid	cv_proles_relid = InvalidOid;
static Oid	cv_cstate_relid = InvalidOid;
static Oid	cv_cstate_pkey = InvalidOid;

/* ---------- shared memory ---------- */

/* size of our shared state */
static Size
cv_consent_shmem_size(void)
{
	return MAXALIGN(sizeof(CvConsentShared));
}

#if PG_VERSION_NUM >= 150000
/* ask for shared memory (PostgreSQL 15+) */
static void
cv_consent_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(cv_consent_shmem_size());
}
#endif

/* create or attach the counters */
static void
cv_consent_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cv_shared = ShmemInitStruct("customer_vault consent", cv_consent_shmem_size(), &found);
	if (!found)
	{
		pg_atomic_init_u64(&cv_shared->started, 0);
		pg_atomic_init_u64(&cv_shared->finished, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---------- cache ---------- */

/* drop the whole cache */
static void
cv_consent_reset(void)
{
	if (cv_consent_cxt != NULL)
		MemoryContextReset(cv_consent_cxt);
	cv_purposes = NULL;
	cv_cache_valid = false;
	cv_cache_reusable = false;
	cv_cache_subjects = 0;
	cv_arena_ptr = NULL;
	cv_arena_left = 0;
	cv_purposes_relid = InvalidOid;
}

/* writers: bump the counters around the commit; everyone: forget on abort */
static void
cv_consent_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (cv_consent_dirty && cv_shared != NULL)
			{
				pg_atomic_fetch_add_u64(&cv_shared->started, 1);
				cv_consent_bumped = true;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (cv_consent_dirty)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that changed consent data"),
						 errdetail("Consent checks in other sessions must learn of the change when it commits.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (cv_consent_bumped && cv_shared != NULL)
				pg_atomic_fetch_add_u64(&cv_shared->finished, 1);
			if (event == XACT_EVENT_ABORT && cv_consent_dirty)
				cv_consent_reset();
			cv_consent_bumped = false;
			cv_consent_dirty = false;
			break;
		default:
			break;
	}
}

/* a rolled-back subtransaction may have undone our own changes */
static void
cv_consent_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && cv_consent_dirty)
		cv_consent_reset();
}

/* register hooks and callbacks; called from _PG_init */
void
ConsentInit(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
#if PG_VERSION_NUM >= 150000
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = cv_consent_shmem_request;
#else
		RequestAddinShmemSpace(cv_consent_shmem_size());
#endif
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = cv_consent_shmem_startup;
	}
	RegisterXactCallback(cv_consent_xact_callback, NULL);
	RegisterSubXactCallback(cv_consent_subxact_callback, NULL);
}

/* the visibility identity of a snapshot */
static void
cv_snap_ident(Snapshot snap, CvSnapIdent *id)
{
	memset(id, 0, sizeof(CvSnapIdent));
	id->xmin = snap->xmin;
	id->xmax = snap->xmax;
	id->xcnt = snap->xcnt;
	id->curcid = snap->curcid;
#ifdef CV_COMPLETION_COUNT
	id->completion = snap->snapXactCompletionCount;
#endif
	id->lxid = MyProc->lxid;
	id->stmt_start = GetCurrentStatementStartTimestamp();
}

/* whether two identities name the same view of the data */
static bool
cv_snap_ident_equal(const CvSnapIdent *a, const CvSnapIdent *b)
{
	if (a->xmin != b->xmin || a->xmax != b->xmax || a->xcnt != b->xcnt ||
		a->curcid != b->curcid)
		return false;
	/* with a completion count, equal counts mean the same completed set */
	if (a->completion != 0 && a->completion == b->completion)
		return true;
	return a->lxid == b->lxid && a->stmt_start == b->stmt_start;
}

/* the OIDs of the consent tables */
static void
cv_consent_relids(void)
{
	Oid			nsp;

	if (OidIsValid(cv_purposes_relid))
		return;
	nsp = get_namespace_oid(CV_SCHEMA, true);
	if (OidIsValid(nsp))
	{
		cv_purposes_relid = get_relname_relid("purposes", nsp);
		cv_proles_relid = get_relname_relid("purpose_roles", nsp);
		cv_cstate_relid = get_relname_relid("consent_state", nsp);
		cv_cstate_pkey = get_relname_relid("consent_state_pkey", nsp);
	}
	if (!OidIsValid(cv_purposes_relid) || !OidIsValid(cv_proles_relid) ||
		!OidIsValid(cv_cstate_relid) || !OidIsValid(cv_cstate_pkey))
	{
		cv_purposes_relid = InvalidOid;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"customer_vault\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION customer_vault CASCADE.")));
	}
}

/* allocate from the cache's arena */
static void *
cv_arena_alloc(Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (size > cv_arena_left)
	{
		Size		block = Max(size, 256 * 1024);

		cv_arena_ptr = MemoryContextAlloc(cv_consent_cxt, block);
		cv_arena_left = block;
	}
	p = cv_arena_ptr;
	cv_arena_ptr += size;
	cv_arena_left -= size;
	return p;
}

/* read purposes and their roles under snap into a fresh cache */
static void
cv_consent_build(Snapshot snap)
{
	HASHCTL		ctl;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	cv_consent_reset();
	cv_consent_relids();
	if (cv_consent_cxt == NULL)
		cv_consent_cxt = AllocSetContextCreate(TopMemoryContext, "customer_vault consent",
											   ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(CvPurpose);
	ctl.hcxt = cv_consent_cxt;
	cv_purposes = hash_create("customer_vault purposes", 16, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	rel = table_open(cv_purposes_relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		char	   *name = TextDatumGetCString(heap_getattr(tup, Anum_purpose_name, RelationGetDescr(rel), &isnull));
		Datum		basis = heap_getattr(tup, Anum_purpose_basis, RelationGetDescr(rel), &isnull);
		CvPurpose  *p;

		if (strlen(name) >= NAMEDATALEN)
			continue;
		p = hash_search(cv_purposes, name, HASH_ENTER, NULL);
		p->requires_consent = isnull || strcmp(TextDatumGetCString(basis), "consent") == 0;
		p->nroles = 0;
		p->roles = NULL;
		p->checked_user = InvalidOid;
		p->state = CV_PURPOSE_UNLOADED;
		p->subjects = NULL;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	rel = table_open(cv_proles_relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Name		role = DatumGetName(heap_getattr(tup, Anum_prole_role, RelationGetDescr(rel), &isnull));
		char	   *purpose = TextDatumGetCString(heap_getattr(tup, Anum_prole_purpose, RelationGetDescr(rel), &isnull));
		CvPurpose  *p;
		Oid			roleid;

		if (strlen(purpose) >= NAMEDATALEN)
			continue;
		p = hash_search(cv_purposes, purpose, HASH_FIND, NULL);
		roleid = get_role_oid(NameStr(*role), true);
		if (p == NULL || !OidIsValid(roleid))
			continue;
		if (p->roles == NULL)
			p->roles = MemoryContextAlloc(cv_consent_cxt, sizeof(Oid) * 64);
		else if (p->nroles % 64 == 0)
			p->roles = repalloc(p->roles, sizeof(Oid) * (p->nroles + 64));
		p->roles[p->nroles++] = roleid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* load the live consents of one purpose under snap (or switch it to probing) */
static void
cv_consent_load_purpose(CvPurpose *p, Snapshot snap)
{
	HASHCTL		ctl;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			wantlen = strlen(p->name);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CvSubjectSlot);
	ctl.hcxt = cv_consent_cxt;
	p->subjects = hash_create("customer_vault consents", 1024, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	p->state = CV_PURPOSE_LOADED;

	rel = table_open(cv_cstate_relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;
		text	   *subject;
		int			len;
		CvSubjectConsent *c;
		CvSubjectSlot *slot;
		uint64		h;
		bool		found;
		bool		has_until;
		TimestampTz until;

		d = heap_getattr(tup, Anum_cstate_purpose, desc, &isnull);
		if (isnull)
			continue;
		{
			text	   *pt = DatumGetTextPP(d);

			if (VARSIZE_ANY_EXHDR(pt) != wantlen || memcmp(VARDATA_ANY(pt), p->name, wantlen) != 0)
				continue;
		}
		d = heap_getattr(tup, Anum_cstate_granted, desc, &isnull);
		if (isnull || !DatumGetBool(d))
			continue;
		d = heap_getattr(tup, Anum_cstate_valid_until, desc, &isnull);
		has_until = !isnull;
		until = has_until ? DatumGetTimestampTz(d) : 0;
		if (has_until && until <= now)
			continue;			/* already expired for this transaction */
		if (cv_cache_subjects >= cv_consent_cache_size)
		{
			/* over the bound: forget what this purpose loaded, probe instead */
			hash_destroy(p->subjects);
			p->subjects = NULL;
			p->state = CV_PURPOSE_PROBE;
			break;
		}
		subject = DatumGetTextPP(heap_getattr(tup, Anum_cstate_subject, desc, &isnull));
		len = VARSIZE_ANY_EXHDR(subject);
		c = cv_arena_alloc(offsetof(CvSubjectConsent, subject) + len + 1);
		memcpy(c->subject, VARDATA_ANY(subject), len);
		c->subject[len] = '\0';
		c->has_until = has_until;
		c->valid_until = until;
		h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(subject), len, 0);
		slot = hash_search(p->subjects, &h, HASH_ENTER, &found);
		c->next = found ? slot->chain : NULL;
		slot->chain = c;
		cv_cache_subjects++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* one index probe of consent_state under snap (purposes too large to cache) */
static bool
cv_consent_probe(const char *purpose, text *subject, Snapshot snap)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey[2];
	HeapTuple	tup;
	bool		result = false;

	rel = table_open(cv_cstate_relid, AccessShareLock);
	ScanKeyInit(&skey[0], Anum_cstate_subject, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(subject));
	ScanKeyInit(&skey[1], Anum_cstate_purpose, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(purpose));
	scan = systable_beginscan(rel, cv_cstate_pkey, true, snap, 2, skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		g = heap_getattr(tup, Anum_cstate_granted, RelationGetDescr(rel), &isnull);

		if (!isnull && DatumGetBool(g))
		{
			Datum		u = heap_getattr(tup, Anum_cstate_valid_until, RelationGetDescr(rel), &isnull);

			result = isnull || DatumGetTimestampTz(u) > GetCurrentTransactionStartTimestamp();
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/* the query's snapshot */
static Snapshot
cv_query_snapshot(void)
{
	if (ActiveSnapshotSet())
		return GetActiveSnapshot();
	return GetTransactionSnapshot();
}

/* make the cache answer for the query's snapshot: reuse, or read it again */
static Snapshot
cv_consent_prepare(void)
{
	Snapshot	snap = cv_query_snapshot();
	CvSnapIdent id;

	cv_snap_ident(snap, &id);
	if (cv_cache_valid && cv_snap_ident_equal(&id, &cv_cache_ident))
		return snap;
	if (cv_cache_valid && cv_cache_reusable && !cv_consent_dirty && cv_shared != NULL &&
		id.completion != 0 && id.completion >= cv_cache_tag_completion &&
		pg_atomic_read_u64(&cv_shared->started) == cv_cache_tag_finished)
	{
		cv_cache_ident = id;
		return snap;
	}

	cv_consent_build(snap);
	cv_cache_valid = true;
	cv_cache_ident = id;
	cv_cache_reusable = false;
#ifdef CV_COMPLETION_COUNT
	if (cv_shared != NULL && !cv_consent_dirty && id.completion != 0 && !IsInParallelMode())
	{
		uint64		finished;
		uint64		completion;
		uint64		started;

		/* nothing in flight, and nothing completed since the snapshot was taken */
		finished = pg_atomic_read_u64(&cv_shared->finished);
		pg_memory_barrier();
		completion = CV_COMPLETION_COUNT();
		pg_memory_barrier();
		started = pg_atomic_read_u64(&cv_shared->started);
		if (started == finished && completion == id.completion)
		{
			cv_cache_reusable = true;
			cv_cache_tag_finished = finished;
			cv_cache_tag_completion = id.completion;
		}
	}
#endif
	return snap;
}

/* the live opt-in of subject for p, from the cache (or a probe) */
static bool
cv_consent_lookup(CvPurpose *p, text *subject, Snapshot snap)
{
	const char *s = VARDATA_ANY(subject);
	int			len = VARSIZE_ANY_EXHDR(subject);
	uint64		h;
	CvSubjectSlot *slot;
	CvSubjectConsent *c;

	if (p->state == CV_PURPOSE_UNLOADED)
		cv_consent_load_purpose(p, snap);
	if (p->state == CV_PURPOSE_PROBE)
		return cv_consent_probe(p->name, subject, snap);
	h = hash_bytes_extended((const unsigned char *) s, len, 0);
	slot = hash_search(p->subjects, &h, HASH_FIND, NULL);
	if (slot == NULL)
		return false;
	for (c = slot->chain; c != NULL; c = c->next)
	{
		if (strncmp(c->subject, s, len) == 0 && c->subject[len] == '\0')
			return !c->has_until || c->valid_until > GetCurrentTransactionStartTimestamp();
	}
	return false;
}

/* a purpose of the cache by name, NULL when unknown */
static CvPurpose *
cv_purpose_find(const char *name, int len)
{
	char		buf[NAMEDATALEN];

	if (len <= 0 || len >= NAMEDATALEN)
		return NULL;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return hash_search(cv_purposes, buf, HASH_FIND, NULL);
}

/* whether the current role may act under p */
static bool
cv_purpose_allowed(CvPurpose *p)
{
	Oid			user = GetUserId();
	int			i;

	if (p->checked_user == user)
		return p->user_allowed;
	p->user_allowed = false;
	for (i = 0; i < p->nroles; i++)
	{
		if (has_privs_of_role(user, p->roles[i]))
		{
			p->user_allowed = true;
			break;
		}
	}
	p->checked_user = user;
	return p->user_allowed;
}

PG_FUNCTION_INFO_V1(cv_has_consent);
PG_FUNCTION_INFO_V1(cv_may_process);
PG_FUNCTION_INFO_V1(cv_consent_changed);

/* has_consent(subject, purpose): an explicit, unexpired, unwithdrawn opt-in exists */
Datum
cv_has_consent(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	text	   *purpose = PG_GETARG_TEXT_PP(1);
	Snapshot	snap = cv_consent_prepare();
	CvPurpose  *p = cv_purpose_find(VARDATA_ANY(purpose), VARSIZE_ANY_EXHDR(purpose));

	PG_RETURN_BOOL(p != NULL && cv_consent_lookup(p, subject, snap));
}

/*
 * may_process(subject, purpose): false for a NULL subject, an unset or
 * unknown purpose, or one the current role is not allowed; true for a
 * purpose whose lawful basis is not consent; else has_consent().
 */
Datum
cv_may_process(PG_FUNCTION_ARGS)
{
	text	   *subject;
	const char *pname;
	int			plen;
	Snapshot	snap;
	CvPurpose  *p;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		text	   *pt = PG_GETARG_TEXT_PP(1);

		pname = VARDATA_ANY(pt);
		plen = VARSIZE_ANY_EXHDR(pt);
	}
	else
	{
		pname = cv_purpose ? cv_purpose : "";
		plen = strlen(pname);
	}
	if (plen == 0)
		PG_RETURN_BOOL(false);
	subject = PG_GETARG_TEXT_PP(0);
	snap = cv_consent_prepare();
	p = cv_purpose_find(pname, plen);
	if (p == NULL || !cv_purpose_allowed(p))
		PG_RETURN_BOOL(false);
	if (!p->requires_consent)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(cv_consent_lookup(p, subject, snap));
}

/* statement trigger on the consent tables: this transaction changed them */
Datum
cv_consent_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function must be called as a trigger")));
	cv_consent_dirty = true;
	cv_cache_valid = false;
	return PointerGetDatum(NULL);
}
