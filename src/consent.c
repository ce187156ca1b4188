/*-------------------------------------------------------------------------
 * consent.c
 *		has_consent() and may_process(), fast enough for a row-level security
 *		policy, and the cache behind them.
 *
 * The cache (per backend) holds the purposes, the roles allowed each, and,
 * per purpose, the subjects holding a live opt-in (granted, with its end
 * date), read with the query's own snapshot.  It answers a query only from
 * the state that query's snapshot sees, never from an older one:
 *
 *  - It is tagged with the visibility of the snapshot it was read under
 *    (xmin, xmax, the in-progress xids, the command id); a query whose
 *    snapshot has the same visibility uses it as it is.  Within a
 *    REPEATABLE READ transaction that is every statement.
 *  - It may serve another snapshot when that snapshot sees exactly the same
 *    consent changes.  Writers bump a shared "started" counter before their
 *    commit becomes visible (XACT_EVENT_PRE_COMMIT); when they finish
 *    (XACT_EVENT_COMMIT/ABORT) they record their xid in a small shared ring
 *    under the next value of a "finished" counter.  A cache read under a
 *    snapshot that sees every committed entry up to "finished" while
 *    "started" equals "finished" holds exactly those changes; any later or
 *    older snapshot that sees the same entries, with "started" unmoved,
 *    uses it.  Transactions that change nothing about consent (any other
 *    write on the server) do not disturb it.  On a hot standby the counters
 *    do not move with replayed changes, so there the cache serves only
 *    snapshots of the same visibility (same xmin, xmax and known-assigned
 *    xids, which a standby snapshot keeps in subxip).  A logical
 *    replication subscriber's apply worker fires row triggers only: row
 *    triggers enabled for replica sessions mark its transactions.
 *  - A prepared change (two-phase commit) is recorded as finished at
 *    PREPARE while its xid stays in progress until COMMIT/ROLLBACK PREPARED,
 *    which moves no counter: when it leaves the ring, its xid goes to a
 *    small list of pending prepared xids that every reuse check consults
 *    until every backend sees it finished.  A cache's tag names those its
 *    snapshot saw in progress; it serves a snapshot that sees exactly those
 *    in progress (an unresolved one does not stop reuse; its COMMIT or
 *    ROLLBACK PREPARED makes every cache be read once more).
 *  - Transactions prepared before a restart (or before a standby's
 *    promotion) survive it, unknown to the ring, and may be finished where
 *    this library sees nothing (a subscriber's apply worker with two_phase
 *    = true).  The horizon is the first xid assignable after them: a
 *    snapshot whose xmin precedes it may see one of them in progress, and
 *    its view counts as unknown (no cache reused for it or from it) until
 *    nothing below the horizon is in progress for anyone; then one flag
 *    says so.  A prepared transaction left over from before the restart, of
 *    any database, turns reuse across snapshots off until it is resolved.
 *  - A transaction that changed the consent tables itself uses a cache only
 *    for the exact snapshot (command id included) it was read under.
 *
 * A purpose is marked loaded only when its load completed; an error or a
 * cancel during the load drops the whole cache.
 *
 * Without shared_preload_libraries (no counters) the cache lives for one
 * snapshot.  Memory is bounded by customer_vault.consent_cache_size subjects
 * per backend over all purposes (integer subjects: two bits per id of their
 * range; text subjects: a 40-byte hash slot, plus an entry when longer than
 * 13 bytes); a purpose that would go over it is answered by an index probe
 * per call instead.
 *
 * Also here: where this transaction last wrote the consent ledger's chain
 * head (so that appends stay O(1)), and the test behind the consent policy
 * event trigger (whether a DDL command made a table a partition or child).
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"
#include "scache.h"

#include <sys/mman.h>

#include "access/genam.h"
#include "access/parallel.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/twophase.h"
#include "access/subtrans.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/deparse_utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"


/* columns of the consent tables, in table order */
#define Anum_purpose_name			1
#define Anum_purpose_basis			2
#define Anum_prole_role				1	/* regrole */
#define Anum_prole_purpose			2
#define Anum_cstate_subject			1
#define Anum_cstate_purpose			2
#define Anum_cstate_granted			3
#define Anum_cstate_valid_until		4

int			cv_consent_cache_size = 1000000;

/* shared counters of consent-changing commits */
/* one finished consent-changing transaction */
#define CV_COMMIT_RING	128
typedef struct CvConsentCommit
{
	uint64		seq;			/* its value of "finished"; 0 = empty slot */
	TransactionId xid;
	bool		committed;
	bool		prepared;		/* recorded at PREPARE: may still be in progress */
} CvConsentCommit;

/*
 * Prepared consent changes no longer in the ring.  A change recorded at
 * PREPARE stays in progress until COMMIT or ROLLBACK PREPARED, which may come
 * after any number of other changes, and no counter moves then (a restart
 * empties the ring and this list: the horizon, below, covers what was
 * prepared before it).  So its xid is kept here, and a cache is
 * reused (or a shared version published or used) only for a snapshot that
 * sees it finished or in progress as the cache's snapshot did, until every
 * backend sees it finished (the oldest xid any backend may still consider
 * running has passed it; then it is dropped).  When the
 * list is full, the newest xid that did not fit is kept in overflow_xid
 * instead: a snapshot must then see every xid up to it finished (its xmin
 * above it).  Empty and without overflow in the usual case: a reuse check
 * costs two loads more.
 */
#define CV_PENDING_MAX	16

typedef struct CvConsentShared
{
	pg_atomic_uint64 started;
	pg_atomic_uint64 finished;
	slock_t		mutex;			/* protects everything below, and orders
								 * "finished" */
	TransactionId evicted_xid;	/* newest committed xid pushed out of the ring */
	TransactionId horizon;		/* Invalid: not yet read (cv_horizon_passed) */
	FullTransactionId horizon_full; /* the same, with its epoch */
	bool		horizon_open;	/* no xid below it is in progress for anyone */
	TimestampTz horizon_set_at; /* when the horizon was read */
	bool		horizon_logged; /* cv_horizon_note has said it is held closed */
	int			npending;
	TransactionId overflow_xid; /* Invalid: none */
	TransactionId pending[CV_PENDING_MAX];
	CvConsentCommit ring[CV_COMMIT_RING];
} CvConsentShared;

static CvConsentShared *cv_shared = NULL;

static int	cv_xid_cmp(const void *a, const void *b);
static void cv_consent_relids(void);
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this transaction changed the consent tables / bumped "started" */
static bool cv_consent_dirty = false;
static bool cv_consent_bumped = false;
static TransactionId cv_consent_xid = InvalidTransactionId;
static uint64 cv_consent_builds = 0;	/* cache builds in this backend (tests) */

/* the ledger's chain head row as this transaction wrote it (see below) */
static bool cv_head_valid = false;
static LocalTransactionId cv_head_lxid = InvalidLocalTransactionId;
static ItemPointerData cv_head_tid;

/* one subject with a live opt-in, in an arena */
typedef struct CvSubjectConsent
{
	struct CvSubjectConsent *next;	/* same 64-bit hash */
	TimestampTz valid_until;
	bool		has_until;
	char		subject[FLEXIBLE_ARRAY_MEMBER];
} CvSubjectConsent;

/* open-addressing table of subjects by 64-bit hash (simplehash) */
#define CV_INLINE_SUBJECT	13
typedef struct CvSubjectSlot
{
	uint64		hash;			/* key */
	char		status;
	uint8		inl_len;		/* length of the inline subject, or 0xFF for none */
	bool		has_until;		/* of the inline subject */
	char		inl[CV_INLINE_SUBJECT];	/* a short subject, kept in the slot itself */
	TimestampTz valid_until;	/* of the inline subject */
	CvSubjectConsent *chain;	/* long subjects and hash collisions */
} CvSubjectSlot;

#define SH_PREFIX		cvsubj
#define SH_ELEMENT_TYPE	CvSubjectSlot
#define SH_KEY_TYPE		uint64
#define SH_KEY			hash
#define SH_HASH_KEY(tb, key)	((uint32) ((key) ^ ((key) >> 32)))
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#define SH_USE_NONDEFAULT_ALLOCATOR
#include "lib/simplehash.h"

/*
 * The slot array of a large table is probed at random, one row at a time:
 * map it ourselves and ask for transparent huge pages, so that probes do not
 * also miss the TLB.  (Where THP is off this is plain anonymous memory.)
 */
#define CV_MAP_HEADER	64
#define CV_HUGE_PAGE	(2 * 1024 * 1024)

static inline void *
cvsubj_allocate(cvsubj_hash *type, Size size)
{
	Size		len = size + CV_MAP_HEADER;
	char	   *base;

	if (len < CV_HUGE_PAGE)
	{
		/* small: from the memory context; a zero header says so */
		base = MemoryContextAllocExtended(type->ctx, len, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		return base + CV_MAP_HEADER;
	}
	len = TYPEALIGN(CV_HUGE_PAGE, len);
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
#ifdef MADV_HUGEPAGE
	(void) madvise(base, len, MADV_HUGEPAGE);
#endif
	*(Size *) base = len;		/* the header: the mapping's length */
	return base + CV_MAP_HEADER;
}

static inline void
cvsubj_free(cvsubj_hash *type, void *pointer)
{
	char	   *base = (char *) pointer - CV_MAP_HEADER;

	if (*(Size *) base == 0)
		pfree(base);
	else
		munmap(base, *(Size *) base);
}

#define CV_PURPOSE_UNLOADED	0
#define CV_PURPOSE_LOADED	1
#define CV_PURPOSE_PROBE	2	/* too many consents to cache: probe the index */
#define CV_PURPOSE_SHARED	3	/* answered by a version of the shared cache */

typedef struct CvPurpose
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		requires_consent;
	int			nroles;
	Oid		   *roles;
	Oid			checked_user;	/* memo of the role check, for one snapshot */
	uint64		checked_gen;
	bool		user_allowed;
	int			state;
	cvsubj_hash *subjects;		/* CvSubjectSlot by hash of the subject */
	/* subjects that are canonical non-negative integers: one bit each */
	bool		has_bitmap;
	int64		num_min;
	int64		num_max;
	uint64	   *granted_bits;	/* a live opt-in */
	uint64	   *until_bits;		/* ... with an end date (kept in subjects) */
	const CvScache *shared;		/* CV_PURPOSE_SHARED: the version (scache.c) */
} CvPurpose;

/*
 * Identity of a snapshot, as far as visibility goes: xmin, xmax and the
 * in-progress xids.  Outside recovery those are snap->xip (top-level xids;
 * subtransactions resolve to them); a snapshot taken during recovery keeps
 * every known-assigned xid in snap->subxip and none in xip, so there the
 * identity is subxip (and whether it overflowed).
 */
typedef struct CvSnapIdent
{
	bool		recovery;
	bool		suboverflowed;	/* recovery only */
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		n;				/* in-progress xids */
	uint32		cap;
	TransactionId *xids;		/* sorted; TopMemoryContext */
} CvSnapIdent;

static MemoryContext cv_consent_cxt = NULL;
static HTAB *cv_purposes = NULL;
static bool cv_cache_valid = false;
static CvSnapIdent cv_cache_ident;
static bool cv_cache_reusable = false;
static CvConsentTag cv_cache_tag;
static int	cv_cache_subjects = 0;
static Snapshot cv_last_snap = NULL;
static uint64 cv_snap_generation = 0;	/* bumped for each new query snapshot */
static uint64 cv_cache_generation = 1;	/* bumped by every rebuild */

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
	RequestAddinShmemSpace(ScacheShmemSize());
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
		SpinLockInit(&cv_shared->mutex);
		cv_shared->evicted_xid = InvalidTransactionId;
		cv_shared->horizon = InvalidTransactionId;
		cv_shared->horizon_full = InvalidFullTransactionId;
		cv_shared->horizon_open = false;
		cv_shared->horizon_set_at = 0;
		cv_shared->horizon_logged = false;
		cv_shared->npending = 0;
		cv_shared->overflow_xid = InvalidTransactionId;
		memset(cv_shared->ring, 0, sizeof(cv_shared->ring));
	}
	ScacheShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

/* ---------- cache ---------- */

/* drop the whole cache */
static void
cv_consent_reset(void)
{
	if (cv_purposes != NULL)
	{
		HASH_SEQ_STATUS status;
		CvPurpose  *p;

		/* the slot arrays may live outside the memory context */
		hash_seq_init(&status, cv_purposes);
		while ((p = hash_seq_search(&status)) != NULL)
		{
			if (p->subjects != NULL)
				cvsubj_destroy(p->subjects);
			p->subjects = NULL;
		}
	}
	if (cv_consent_cxt != NULL)
		MemoryContextReset(cv_consent_cxt);
	cv_purposes = NULL;
	cv_cache_generation++;
	cv_cache_valid = false;
	cv_cache_reusable = false;
	cv_cache_subjects = 0;
	cv_arena_ptr = NULL;
	cv_arena_left = 0;
	cv_purposes_relid = InvalidOid;
}

/* the later of two xids, either of which may be invalid (under the mutex) */
static inline TransactionId
cv_xid_later(TransactionId a, TransactionId b)
{
	if (!TransactionIdIsValid(a))
		return b;
	if (!TransactionIdIsValid(b) || TransactionIdPrecedes(b, a))
		return a;
	return b;
}

/* keep a possibly prepared xid in the pending list, or in overflow_xid (under the mutex) */
static void
cv_pending_add(TransactionId xid)
{
	int			i;

	if (!TransactionIdIsNormal(xid))
		return;
	for (i = 0; i < cv_shared->npending; i++)
	{
		if (TransactionIdEquals(cv_shared->pending[i], xid))
			return;
	}
	if (cv_shared->npending < CV_PENDING_MAX)
		cv_shared->pending[cv_shared->npending++] = xid;
	else
		cv_shared->overflow_xid = cv_xid_later(cv_shared->overflow_xid, xid);
}

/*
 * Record a finished consent-changing transaction in the ring, then bump
 * "finished"; prepared: at PREPARE (its xid is still in progress).
 */
static void
cv_consent_record_finish(bool committed, bool prepared)
{
	CvConsentCommit *slot;
	uint64		seq;

	SpinLockAcquire(&cv_shared->mutex);
	seq = pg_atomic_read_u64(&cv_shared->finished) + 1;
	slot = &cv_shared->ring[seq % CV_COMMIT_RING];
	if (slot->seq != 0 && slot->committed && !slot->prepared && TransactionIdIsValid(slot->xid) &&
		(!TransactionIdIsValid(cv_shared->evicted_xid) ||
		 TransactionIdFollows(slot->xid, cv_shared->evicted_xid)))
		cv_shared->evicted_xid = slot->xid;
	/* a prepared change leaving the ring may still be in progress: keep it */
	if (slot->seq != 0 && slot->prepared)
		cv_pending_add(slot->xid);
	slot->seq = seq;
	slot->xid = cv_consent_xid;
	slot->committed = committed && TransactionIdIsValid(cv_consent_xid);
	slot->prepared = prepared && slot->committed;
	pg_atomic_write_u64(&cv_shared->finished, seq);
	SpinLockRelease(&cv_shared->mutex);
}

/* whether a committed transaction is visible in a (non-recovery) MVCC snapshot */
static bool
cv_xid_visible(Snapshot snap, TransactionId xid)
{
	uint32		i;

	if (TransactionIdPrecedes(xid, snap->xmin))
		return true;
	if (TransactionIdFollowsOrEquals(xid, snap->xmax))
		return false;
	for (i = 0; i < snap->xcnt; i++)
		if (TransactionIdEquals(snap->xip[i], xid))
			return false;
	return true;
}

/*
 * The horizon: transactions prepared before this shared memory was made
 * (server start, crash restart; on a standby, one made before recovery
 * ended) survive it, none of them is in the ring, and they may be finished
 * by a path this library never sees (a logical-replication apply worker
 * with two_phase = true calls FinishPreparedTransaction directly; so do
 * Citus's and other recovery paths).  So no such transaction may be in
 * progress for a snapshot whose view is trusted: the first xid that could
 * be assigned after them (the next xid, read once recovery has ended, by
 * the first consent check that needs it; a later read only widens it) is
 * the horizon, and a snapshot whose xmin precedes it may see one of them
 * in progress: its view is unknown (cv_consent_view), so a cache read
 * under it is never reused for another snapshot nor published, and none
 * is reused for it (it gets the per-snapshot path: a cache of the same
 * visibility, or a build).  Once no backend may consider any xid below the
 * horizon running, it is open for the life of the shared memory: a
 * snapshot taken later has its xmin above it, and every snapshot still held
 * has too (GetOldestTransactionIdConsideredRunning counts every backend's
 * xmin).  Until then a check costs a comparison more (and, once per xmin
 * seen, a look at the oldest running xid); after that, one flag.  While a
 * prepared transaction older than the horizon remains, of any database and
 * whether or not it changed consent, no cache is shared between snapshots
 * (correct, slower; pg_prepared_xacts lists them, and the server log says
 * so once that has lasted 10 s: cv_horizon_note).  The comparison stays
 * meaningful across xid wraparound: such a transaction holds every
 * snapshot's xmin at or below it, within 2^31 xids of the horizon (and
 * the test that opens it compares full xids).
 */

/* how long the horizon may stay closed before the server log hears of it */
#define CV_HORIZON_LOG_AFTER_MS 10000

/*
 * Say once (per shared memory) in the server log that the horizon has been
 * held closed for a while, and by which transaction: typically one prepared
 * before the restart that nobody finished.  Checks stay exact meanwhile;
 * only no consent cache is shared between snapshots.  (LOG: for the DBA,
 * never sent to the sessions whose policies run this.)
 */
static void
cv_horizon_note(Snapshot snap, TransactionId horizon)
{
	TimestampTz now;
	bool		say = false;

	if (cv_shared->horizon_logged)	/* an unlocked read: said already */
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&cv_shared->mutex);
	if (!cv_shared->horizon_logged && !cv_shared->horizon_open &&
		TimestampDifferenceExceeds(cv_shared->horizon_set_at, now, CV_HORIZON_LOG_AFTER_MS))
	{
		cv_shared->horizon_logged = true;
		say = true;
	}
	SpinLockRelease(&cv_shared->mutex);
	if (say)
		ereport(LOG,
				(errmsg("customer_vault: consent caches are not shared between snapshots while transaction %u is in progress",
						snap->xmin),
				 errdetail("It is older than the consent horizon (transaction %u, the first after this server started or ended its recovery). Consent checks stay exact, but each snapshot builds its own cache.",
						   horizon),
				 errhint("If it is a prepared transaction (see pg_prepared_xacts), finish it with COMMIT PREPARED or ROLLBACK PREPARED.")));
}

/* xmin of the snapshot this backend last tried to open the horizon for */
static TransactionId cv_horizon_tried_at = InvalidTransactionId;

/* the full xid of xid, which is within 2^31 of the full xid rel */
static inline FullTransactionId
cv_full_xid(FullTransactionId rel, TransactionId xid)
{
	return FullTransactionIdFromU64(U64FromFullTransactionId(rel) +
									(int32) (xid - XidFromFullTransactionId(rel)));
}

/*
 * Whether no transaction below the horizon is in progress for snap (a
 * snapshot taken in normal running); sets the horizon on first use, and
 * opens it when no backend may see any of them in progress any more (tried
 * once per xmin of the snapshots checked; compared as full xids, so that a
 * horizon left closed for 2^31 xids still opens).  snap's own xmin is
 * counted there: the backend's xmin is at or below it.
 */
static bool
cv_horizon_passed(Snapshot snap)
{
	TransactionId horizon = cv_shared->horizon;	/* set once: an unlocked read */

	if (unlikely(!TransactionIdIsValid(horizon)))
	{
		FullTransactionId next = ReadNextFullTransactionId();
		TimestampTz now = GetCurrentTimestamp();

		SpinLockAcquire(&cv_shared->mutex);
		if (!TransactionIdIsValid(cv_shared->horizon))
		{
			cv_shared->horizon_full = next;
			cv_shared->horizon = XidFromFullTransactionId(next);
			cv_shared->horizon_set_at = now;
		}
		horizon = cv_shared->horizon;
		SpinLockRelease(&cv_shared->mutex);
	}
	if (!TransactionIdEquals(snap->xmin, cv_horizon_tried_at))
	{
		FullTransactionId next = ReadNextFullTransactionId();
		FullTransactionId oldest;
		bool		open;

		cv_horizon_tried_at = snap->xmin;
		oldest = cv_full_xid(next, GetOldestTransactionIdConsideredRunning());
		SpinLockAcquire(&cv_shared->mutex);
		if (FullTransactionIdFollowsOrEquals(oldest, cv_shared->horizon_full))
			cv_shared->horizon_open = true;
		open = cv_shared->horizon_open;
		SpinLockRelease(&cv_shared->mutex);
		if (open)
			return true;
	}
	if (!TransactionIdPrecedes(snap->xmin, horizon))
		return true;
	cv_horizon_note(snap, horizon);
	return false;
}

/* xmin of the snapshot this backend last dropped pending xids for */
static TransactionId cv_pruned_at = InvalidTransactionId;

/*
 * Drop the pending xids (and the overflow) that every backend sees finished:
 * they precede the oldest xid any backend may still consider running (that
 * takes every backend's xmin and xid into account, a prepared transaction's
 * too).  Tried once per xmin of the snapshots checked, only while there is
 * anything to drop that snap itself already sees finished.
 */
static void
cv_pending_prune(Snapshot snap)
{
	TransactionId oldest;
	bool		any = false;
	int			i;

	if (TransactionIdEquals(snap->xmin, cv_pruned_at))
		return;
	SpinLockAcquire(&cv_shared->mutex);
	if (TransactionIdIsValid(cv_shared->overflow_xid) &&
		TransactionIdPrecedes(cv_shared->overflow_xid, snap->xmin))
		any = true;
	for (i = 0; !any && i < cv_shared->npending; i++)
		any = TransactionIdPrecedes(cv_shared->pending[i], snap->xmin);
	SpinLockRelease(&cv_shared->mutex);
	cv_pruned_at = snap->xmin;
	if (!any)
		return;
	oldest = GetOldestTransactionIdConsideredRunning();
	SpinLockAcquire(&cv_shared->mutex);
	for (i = cv_shared->npending - 1; i >= 0; i--)
	{
		if (TransactionIdPrecedes(cv_shared->pending[i], oldest))
			cv_shared->pending[i] = cv_shared->pending[--cv_shared->npending];
	}
	if (TransactionIdIsValid(cv_shared->overflow_xid) &&
		TransactionIdPrecedes(cv_shared->overflow_xid, oldest))
		cv_shared->overflow_xid = InvalidTransactionId;
	SpinLockRelease(&cv_shared->mutex);
}

/*
 * What snap sees of the consent changes finished up to f, into *view: false
 * when it misses a committed one that is not prepared (or "finished" moved
 * past f meanwhile, or a transaction older than the horizon may be in
 * progress for snap, or an overflowed prepared xid may be unseen, or more
 * prepared ones are in progress for it than a tag holds).  Else
 * view->unseen are the prepared consent changes (recorded at PREPARE: in
 * the ring up to f, or in the pending list) that are still in progress for
 * snap, sorted.  A cache read under a snapshot S
 * serves a snapshot T only when T's view equals S's: a prepared change in
 * progress for both is in neither's data, and one finished for both is in
 * both (its COMMIT or ROLLBACK PREPARED makes T's view differ from the
 * cache's: rebuilt once).
 */
static bool
cv_consent_view(Snapshot snap, uint64 f, CvConsentTag *view)
{
	bool		ok = true;
	int			i;

	view->finished = f;
	view->nunseen = 0;
	if (snap->takenDuringRecovery)
		return false;
	/* a transaction prepared before the restart may be in progress for snap */
	if (unlikely(!cv_shared->horizon_open) && !cv_horizon_passed(snap))
		return false;
	/* unlocked reads: only hints of work to do (each is done under the mutex) */
	if (unlikely(cv_shared->npending > 0 || TransactionIdIsValid(cv_shared->overflow_xid)))
		cv_pending_prune(snap);
	SpinLockAcquire(&cv_shared->mutex);
	if (pg_atomic_read_u64(&cv_shared->finished) != f)
		ok = false;				/* moved on meanwhile */
	else if (TransactionIdIsValid(cv_shared->evicted_xid) &&
			 !cv_xid_visible(snap, cv_shared->evicted_xid))
		ok = false;
	else if (TransactionIdIsValid(cv_shared->overflow_xid) &&
			 !TransactionIdPrecedes(cv_shared->overflow_xid, snap->xmin))
		ok = false;				/* some prepared xid up to it may be unseen */
	else
	{
		for (i = 0; ok && i < cv_shared->npending; i++)
		{
			if (!cv_xid_visible(snap, cv_shared->pending[i]))
			{
				if (view->nunseen < CV_TAG_UNSEEN_MAX)
					view->unseen[view->nunseen++] = cv_shared->pending[i];
				else
					ok = false;
			}
		}
		for (i = 0; ok && i < CV_COMMIT_RING; i++)
		{
			CvConsentCommit *c = &cv_shared->ring[i];

			if (c->seq == 0 || c->seq > f || !c->committed || cv_xid_visible(snap, c->xid))
				continue;
			if (!c->prepared)
				ok = false;
			else if (view->nunseen < CV_TAG_UNSEEN_MAX)
				view->unseen[view->nunseen++] = c->xid;
			else
				ok = false;
		}
	}
	SpinLockRelease(&cv_shared->mutex);
	if (ok && view->nunseen > 1)
		qsort(view->unseen, view->nunseen, sizeof(TransactionId), cv_xid_cmp);
	return ok;
}

/* whether two views of the consent changes are the same */
static inline bool
cv_view_equal(const CvConsentTag *a, const CvConsentTag *b)
{
	return a->finished == b->finished && a->nunseen == b->nunseen &&
		(a->nunseen == 0 || memcmp(a->unseen, b->unseen, sizeof(TransactionId) * a->nunseen) == 0);
}

/*
 * Whether a cache read under the view tag answers for snap: no consent
 * change has started since, and snap's view of the finished ones is the
 * same.
 */
static bool
cv_tag_serves(Snapshot snap, const CvConsentTag *tag)
{
	CvConsentTag view;

	if (!cv_consent_view(snap, tag->finished, &view) || !cv_view_equal(&view, tag))
		return false;			/* also: "finished" moved past the tag */
	pg_memory_barrier();
	return pg_atomic_read_u64(&cv_shared->started) == tag->finished;
}

/* the shared "started" counter (0 without shared_preload_libraries) */
uint64
CvConsentStarted(void)
{
	return cv_shared != NULL ? pg_atomic_read_u64(&cv_shared->started) : 0;
}

/*
 * Whether snap sees exactly the consent changes finished so far, none being
 * in flight (prepared ones aside): then *tag is the view that state is known
 * by (the rule by which a cache read under snap may serve other snapshots).
 */
bool
CvConsentSnapshotTag(Snapshot snap, CvConsentTag *tag)
{
	uint64		finished;
	uint64		started;

	if (cv_shared == NULL || snap->takenDuringRecovery || RecoveryInProgress())
		return false;
	finished = pg_atomic_read_u64(&cv_shared->finished);
	pg_memory_barrier();
	started = pg_atomic_read_u64(&cv_shared->started);
	return started == finished && cv_consent_view(snap, finished, tag);
}

/*
 * Whether a cache read at tag answers for snap: no consent change has
 * started since, and snap's view of those up to it is the tag's.
 */
bool
CvConsentTagValid(Snapshot snap, const CvConsentTag *tag)
{
	if (cv_shared == NULL || snap->takenDuringRecovery || RecoveryInProgress())
		return false;
	return cv_tag_serves(snap, tag);
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
				cv_consent_xid = GetTopTransactionIdIfAny();
				pg_atomic_fetch_add_u64(&cv_shared->started, 1);
				cv_consent_bumped = true;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * Two-phase commit (Citus writes the shards of the consent tables,
			 * once they are reference tables, in prepared transactions): the
			 * change is recorded as committed when the transaction is
			 * prepared.  Its xid stays in progress in every snapshot until
			 * COMMIT PREPARED (a dummy PGPROC holds it), so no cache read
			 * before then can serve a snapshot that sees the change, and a
			 * snapshot that sees it finished reads afresh.  ROLLBACK
			 * PREPARED leaves nothing to see: a rebuild is merely wasted.
			 */
			if (cv_consent_dirty && cv_shared != NULL)
			{
				cv_consent_xid = GetTopTransactionIdIfAny();
				pg_atomic_fetch_add_u64(&cv_shared->started, 1);
				cv_consent_bumped = true;
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (cv_consent_bumped && cv_shared != NULL)
				cv_consent_record_finish(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
										 event == XACT_EVENT_PREPARE,
										 event == XACT_EVENT_PREPARE);
			if (event == XACT_EVENT_ABORT && cv_consent_dirty)
				cv_consent_reset();
			/* shared versions replaced meanwhile are unmapped: forget pointers into them */
			if (cv_shared != NULL && CvScacheAtXactEnd())
				cv_consent_reset();
			cv_consent_bumped = false;
			cv_consent_dirty = false;
			cv_head_valid = false;
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
	if (event == SUBXACT_EVENT_ABORT_SUB)
		cv_head_valid = false;	/* the head row may be back at an older version */
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
		RequestAddinShmemSpace(ScacheShmemSize());
#endif
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = cv_consent_shmem_startup;
	}
	RegisterXactCallback(cv_consent_xact_callback, NULL);
	RegisterSubXactCallback(cv_consent_subxact_callback, NULL);
}

/* order of xids, for sorting */
static int
cv_xid_cmp(const void *a, const void *b)
{
	TransactionId x = *(const TransactionId *) a;
	TransactionId y = *(const TransactionId *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* the in-progress xids of a snapshot that decide its visibility */
static inline void
cv_snap_xids(Snapshot snap, const TransactionId **xids, uint32 *n)
{
	if (snap->takenDuringRecovery)
	{
		*xids = snap->subxip;
		*n = (uint32) snap->subxcnt;
	}
	else
	{
		*xids = snap->xip;
		*n = snap->xcnt;
	}
}

/* the visibility identity of a snapshot */
static void
cv_snap_ident(Snapshot snap, CvSnapIdent *id)
{
	const TransactionId *xids;
	uint32		n;

	cv_snap_xids(snap, &xids, &n);
	id->recovery = snap->takenDuringRecovery;
	id->suboverflowed = snap->takenDuringRecovery && snap->suboverflowed;
	id->xmin = snap->xmin;
	id->xmax = snap->xmax;
	id->curcid = snap->curcid;
	if (n > id->cap)
	{
		uint32		cap = Max(n, 64);

		id->xids = id->xids ? repalloc(id->xids, sizeof(TransactionId) * cap)
			: MemoryContextAlloc(TopMemoryContext, sizeof(TransactionId) * cap);
		id->cap = cap;
	}
	id->n = n;
	if (n > 0)
	{
		memcpy(id->xids, xids, sizeof(TransactionId) * n);
		qsort(id->xids, n, sizeof(TransactionId), cv_xid_cmp);
	}
}

/* whether two identities see the same transactions as committed */
static bool
cv_snap_same_view(const CvSnapIdent *a, const CvSnapIdent *b)
{
	return a->recovery == b->recovery && a->suboverflowed == b->suboverflowed &&
		a->xmin == b->xmin && a->xmax == b->xmax && a->n == b->n &&
		(a->n == 0 || memcmp(a->xids, b->xids, sizeof(TransactionId) * a->n) == 0);
}

/* the raw in-progress xids of the last snapshot served (unsorted, as given) */
static TransactionId *cv_last_raw = NULL;
static uint32 cv_last_raw_n = 0;
static uint32 cv_last_raw_cap = 0;

/* remember the snapshot just served, for the per-call fast path */
static void
cv_remember_snap(Snapshot snap)
{
	const TransactionId *xids;
	uint32		n;

	cv_snap_xids(snap, &xids, &n);
	if (n > cv_last_raw_cap)
	{
		uint32		cap = Max(n, 64);

		cv_last_raw = cv_last_raw ? repalloc(cv_last_raw, sizeof(TransactionId) * cap)
			: MemoryContextAlloc(TopMemoryContext, sizeof(TransactionId) * cap);
		cv_last_raw_cap = cap;
	}
	if (n > 0)
		memcpy(cv_last_raw, xids, sizeof(TransactionId) * n);
	cv_last_raw_n = n;
	cv_last_snap = snap;
}

/*
 * Whether snap is the snapshot served last, unchanged: the same pointer is
 * not enough (a later statement's snapshot may be allocated at the same
 * address), so the visibility fields are compared too, in their given order.
 */
static inline bool
cv_same_as_last_snap(Snapshot snap)
{
	const TransactionId *xids;
	uint32		n;

	if (snap != cv_last_snap || snap->curcid != cv_cache_ident.curcid ||
		snap->xmin != cv_cache_ident.xmin || snap->xmax != cv_cache_ident.xmax ||
		snap->takenDuringRecovery != cv_cache_ident.recovery)
		return false;
	cv_snap_xids(snap, &xids, &n);
	if (n != cv_last_raw_n)
		return false;
	if (snap->takenDuringRecovery && snap->suboverflowed != cv_cache_ident.suboverflowed)
		return false;
	return n == 0 || memcmp(xids, cv_last_raw, sizeof(TransactionId) * n) == 0;
}

/* make the identity of the cache that of the scratch one (by swapping) */
static void
cv_take_ident(CvSnapIdent *scratch)
{
	CvSnapIdent tmp = cv_cache_ident;

	cv_cache_ident = *scratch;
	*scratch = tmp;
}

/* the OIDs of the consent tables */
static void
cv_consent_relids(void)
{
	Oid			nsp;
	Oid			purposes = InvalidOid;
	Oid			proles = InvalidOid;
	Oid			cstate = InvalidOid;
	Oid			cstate_pkey = InvalidOid;

	if (OidIsValid(cv_purposes_relid))
		return;
	nsp = get_namespace_oid(CV_SCHEMA, true);
	if (OidIsValid(nsp))
	{
		purposes = get_relname_relid("purposes", nsp);
		proles = get_relname_relid("purpose_roles", nsp);
		cstate = get_relname_relid("consent_state", nsp);
		cstate_pkey = get_relname_relid("consent_state_pkey", nsp);
	}
	if (!OidIsValid(purposes) || !OidIsValid(proles) ||
		!OidIsValid(cstate) || !OidIsValid(cstate_pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"customer_vault\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION customer_vault CASCADE.")));

	/*
	 * Once Citus made them reference tables, their rows are in local shard
	 * relations (citus.c); resolved again at every rebuild of the cache,
	 * which every change of the consent tables causes.
	 */
	purposes = CvCitusRowsRelation(purposes, NULL, 0);
	proles = CvCitusRowsRelation(proles, NULL, 0);
	cstate = CvCitusRowsRelation(cstate, &cstate_pkey, 1);
	cv_proles_relid = proles;
	cv_cstate_relid = cstate;
	cv_cstate_pkey = cstate_pkey;
	cv_purposes_relid = purposes;
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
		/* everything but the key starts out zero: unloaded, no roles, no bitmap */
		memset((char *) p + NAMEDATALEN, 0, sizeof(CvPurpose) - NAMEDATALEN);
		p->requires_consent = isnull || strcmp(TextDatumGetCString(basis), "consent") == 0;
		p->checked_user = InvalidOid;
		p->state = CV_PURPOSE_UNLOADED;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	rel = table_open(cv_proles_relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Oid			roleid = DatumGetObjectId(heap_getattr(tup, Anum_prole_role, RelationGetDescr(rel), &isnull));
		char	   *purpose = TextDatumGetCString(heap_getattr(tup, Anum_prole_purpose, RelationGetDescr(rel), &isnull));
		CvPurpose  *p;

		if (strlen(purpose) >= NAMEDATALEN)
			continue;
		p = hash_search(cv_purposes, purpose, HASH_FIND, NULL);
		/* the OID of a dropped role is ignored (allow_purpose removes it) */
		if (p == NULL || !OidIsValid(roleid) ||
			!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(roleid)))
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

/* a numeric subject of the bitmap: value and whether it has an end date */
typedef struct CvNumSubject
{
	int64		value;
	bool		has_until;
} CvNumSubject;

/*
 * The value of a subject written as a canonical non-negative integer ("0" or
 * no leading zero, at most 18 digits), or -1 for any other subject.
 */
static inline int64
cv_subject_number(const char *s, int len)
{
	int64		v = 0;
	int			i;

	if (len <= 0 || len > 18 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* put a subject into the hash table: short ones into the slot itself */
static void
cv_consent_hash_insert(CvPurpose *p, const char *subject, int len, bool has_until, TimestampTz until)
{
	CvSubjectConsent *c;
	CvSubjectSlot *slot;
	bool		found;

	slot = cvsubj_insert(p->subjects, hash_bytes_extended((const unsigned char *) subject, len, 0),
						 &found);
	if (!found)
	{
		slot->chain = NULL;
		slot->inl_len = 0xFF;
		if (len <= CV_INLINE_SUBJECT)
		{
			memcpy(slot->inl, subject, len);
			slot->inl_len = (uint8) len;
			slot->has_until = has_until;
			slot->valid_until = until;
			return;
		}
	}
	c = cv_arena_alloc(offsetof(CvSubjectConsent, subject) + len + 1);
	memcpy(c->subject, subject, len);
	c->subject[len] = '\0';
	c->has_until = has_until;
	c->valid_until = until;
	c->next = slot->chain;
	slot->chain = c;
}

/*
 * Integer subjects (what id::text gives for bigint keys) go into a bitmap
 * over their range when it is dense enough: a bit test instead of a hash
 * probe.  Sparse ranges go into the hash table like any other subject.
 */
static void
cv_consent_build_bitmap(CvPurpose *p, CvNumSubject *nums, int n)
{
	int64		lo = PG_INT64_MAX,
				hi = -1;
	int64		range;
	int			i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
	{
		lo = Min(lo, nums[i].value);
		hi = Max(hi, nums[i].value);
	}
	range = hi - lo + 1;
	if (range <= Max((int64) n * 64, (int64) 1 << 20) && range <= ((int64) 1 << 30))
	{
		Size		words = (range + 63) / 64;

		p->granted_bits = MemoryContextAllocZero(cv_consent_cxt, words * sizeof(uint64));
		p->until_bits = MemoryContextAllocZero(cv_consent_cxt, words * sizeof(uint64));
		p->num_min = lo;
		p->num_max = hi;
		for (i = 0; i < n; i++)
		{
			int64		off = nums[i].value - lo;

			p->granted_bits[off / 64] |= UINT64CONST(1) << (off % 64);
			if (nums[i].has_until)
				p->until_bits[off / 64] |= UINT64CONST(1) << (off % 64);
		}
		p->has_bitmap = true;
	}
	else
	{
		for (i = 0; i < n; i++)
		{
			char		buf[32];
			int			len;

			if (nums[i].has_until)
				continue;		/* already in the hash table with its end date */
			len = snprintf(buf, sizeof(buf), INT64_FORMAT, nums[i].value);
			cv_consent_hash_insert(p, buf, len, false, 0);
		}
	}
	pfree(nums);
}

/* read the live consents of one purpose under snap; the state it ends in */
static int
cv_consent_load_scan(CvPurpose *p, Snapshot snap)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			wantlen = strlen(p->name);
	int			loaded = 0;
	CvNumSubject *nums = NULL;
	int			nnums = 0;
	int			maxnums = 0;

	int			state = CV_PURPOSE_LOADED;

	p->subjects = cvsubj_create(cv_consent_cxt, 1024, NULL);

	rel = table_open(cv_cstate_relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;
		text	   *subject;
		int			len;
		int64		num;
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
			cvsubj_destroy(p->subjects);
			p->subjects = NULL;
			state = CV_PURPOSE_PROBE;
			cv_cache_subjects -= loaded;
			break;
		}
		subject = DatumGetTextPP(heap_getattr(tup, Anum_cstate_subject, desc, &isnull));
		len = VARSIZE_ANY_EXHDR(subject);
		num = cv_subject_number(VARDATA_ANY(subject), len);
		if (num >= 0)
		{
			if (nnums == maxnums)
			{
				maxnums = maxnums ? maxnums * 2 : 1024;
				nums = nums ? repalloc_huge(nums, sizeof(CvNumSubject) * maxnums)
					: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(CvNumSubject) * maxnums);
			}
			nums[nnums].value = num;
			nums[nnums].has_until = has_until;
			nnums++;
		}
		/* integer subjects with an end date keep it in the hash table */
		if (num < 0 || has_until)
			cv_consent_hash_insert(p, VARDATA_ANY(subject), len, has_until, until);
		cv_cache_subjects++;
		loaded++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (state == CV_PURPOSE_LOADED)
		cv_consent_build_bitmap(p, nums, nnums);
	else if (nums != NULL)
		pfree(nums);
	return state;
}

/*
 * Load one purpose.  It is marked loaded only once its load is complete: an
 * error or a cancel in the middle (statement_timeout, pg_cancel_backend)
 * drops the whole cache, so no later call answers from a partial load.
 */
static void
cv_consent_load_purpose(CvPurpose *p, Snapshot snap)
{
	volatile int state = CV_PURPOSE_UNLOADED;

	/*
	 * The shared cache, unless this transaction changed consent data itself
	 * (its snapshot sees its own changes), or this is a parallel worker whose
	 * leader has written (it might have, and the worker cannot tell), or a
	 * hot standby (no counters move with replayed changes).
	 */
	if (cv_shared != NULL && !cv_consent_dirty && !snap->takenDuringRecovery &&
		!RecoveryInProgress() &&
		!(IsParallelWorker() && TransactionIdIsValid(GetTopTransactionIdIfAny())))
	{
		PG_TRY();
		{
			p->shared = CvScacheGet(p->name, cv_cstate_relid, snap);
		}
		PG_CATCH();
		{
			cv_consent_reset();
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (p->shared != NULL)
		{
			p->state = CV_PURPOSE_SHARED;
			return;
		}
	}
	PG_TRY();
	{
		state = cv_consent_load_scan(p, snap);
	}
	PG_CATCH();
	{
		cv_consent_reset();
		PG_RE_THROW();
	}
	PG_END_TRY();
	p->state = state;
}

/* one index probe of consent_state under snap (purposes too large to cache) */
static bool
cv_consent_probe(const char *purpose, const char *s, int len, Snapshot snap)
{
	text	   *subject = cstring_to_text_with_len(s, len);
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
	static CvSnapIdent id;

	/* fast path: the very snapshot of the last call */
	if (cv_cache_valid && cv_same_as_last_snap(snap))
		return snap;
	cv_last_snap = NULL;
	cv_snap_generation++;		/* role memberships may have changed too */
	cv_snap_ident(snap, &id);
	if (cv_cache_valid && cv_snap_same_view(&id, &cv_cache_ident) &&
		(id.curcid == cv_cache_ident.curcid || !cv_consent_dirty))
	{
		cv_take_ident(&id);
		cv_remember_snap(snap);
		return snap;
	}
	if (cv_cache_valid && cv_cache_reusable && !cv_consent_dirty && cv_shared != NULL &&
		pg_atomic_read_u64(&cv_shared->started) == cv_cache_tag.finished &&
		cv_tag_serves(snap, &cv_cache_tag))
	{
		cv_take_ident(&id);
		cv_remember_snap(snap);
		return snap;
	}

	cv_consent_build(snap);
	cv_consent_builds++;
	cv_cache_valid = true;
	cv_take_ident(&id);
	cv_remember_snap(snap);
	cv_cache_reusable = false;
	if (cv_shared != NULL && !cv_consent_dirty && !IsInParallelMode() && !RecoveryInProgress() &&
		!snap->takenDuringRecovery)
	{
		uint64		finished;
		uint64		started;

		/* nothing in flight, and the query's snapshot sees every finished change */
		finished = pg_atomic_read_u64(&cv_shared->finished);
		pg_memory_barrier();
		started = pg_atomic_read_u64(&cv_shared->started);
		if (started == finished && cv_consent_view(snap, finished, &cv_cache_tag))
			cv_cache_reusable = true;
	}
	return snap;
}

/* the live opt-in of a subject for p, from the hash table */
static bool
cv_consent_hash_lookup(CvPurpose *p, const char *s, int len)
{
	CvSubjectSlot *slot;
	CvSubjectConsent *c;

	slot = cvsubj_lookup(p->subjects, hash_bytes_extended((const unsigned char *) s, len, 0));
	if (slot == NULL)
		return false;
	if (slot->inl_len == len && memcmp(slot->inl, s, len) == 0)
		return !slot->has_until || slot->valid_until > GetCurrentTransactionStartTimestamp();
	for (c = slot->chain; c != NULL; c = c->next)
	{
		if (strncmp(c->subject, s, len) == 0 && c->subject[len] == '\0')
			return !c->has_until || c->valid_until > GetCurrentTransactionStartTimestamp();
	}
	return false;
}

/* the live opt-in of subject (text, or num >= 0 for an integer subject) for p */
static bool
cv_consent_lookup(CvPurpose *p, const char *s, int len, int64 num, Snapshot snap)
{
	char		buf[32];

	if (p->state == CV_PURPOSE_UNLOADED)
		cv_consent_load_purpose(p, snap);
	if (p->state == CV_PURPOSE_SHARED)
		return CvScacheLookup(p->shared, s, len, num, GetCurrentTransactionStartTimestamp());
	if (p->state == CV_PURPOSE_PROBE)
	{
		if (s == NULL)
		{
			len = pg_lltoa(num, buf);
			s = buf;
		}
		return cv_consent_probe(p->name, s, len, snap);
	}
	if (num >= 0 && p->has_bitmap)
	{
		int64		off;

		if (num < p->num_min || num > p->num_max)
			return false;
		off = num - p->num_min;
		if ((p->granted_bits[off / 64] & (UINT64CONST(1) << (off % 64))) == 0)
			return false;
		if ((p->until_bits[off / 64] & (UINT64CONST(1) << (off % 64))) == 0)
			return true;
	}
	if (s == NULL)
	{
		/* an integer subject given without its text (may_process(bigint)) */
		len = pg_lltoa(num, buf);
		s = buf;
	}
	return cv_consent_hash_lookup(p, s, len);
}

/* per call site memo of the last purpose looked up */
typedef struct CvPurposeMemo
{
	uint64		generation;
	int			len;
	char		name[NAMEDATALEN];
	CvPurpose  *purpose;
	int8		arg_const;		/* the purpose argument of this call site is a
								 * Const: 1 yes, 0 no, -1 not looked at yet */
	bool		by_const;		/* the memo was made from that Const */

	/*
	 * may_process's fast path (cv_fast_valid): the shared version that
	 * answered the last call of this call site, while nothing it depended on
	 * has changed: the cache (generation), the snapshot served (and its
	 * generation), the transaction (start time), the current role.
	 */
	const CvScache *fast_sc;	/* NULL: no fast path */
	uint64		fast_cache_gen;
	uint64		fast_snap_gen;
	LocalTransactionId fast_lxid;
	Oid			fast_user;
	TimestampTz fast_now;
} CvPurposeMemo;

/* whether argument argno of the call's expression is a Const (its value never changes) */
static bool
cv_arg_is_const(FmgrInfo *flinfo, int argno)
{
	List	   *args;

	if (flinfo->fn_expr == NULL || !IsA(flinfo->fn_expr, FuncExpr))
		return false;
	args = ((FuncExpr *) flinfo->fn_expr)->args;
	return argno < list_length(args) && IsA(list_nth(args, argno), Const);
}

/*
 * A purpose of the cache by name, NULL when unknown; memoised per call site.
 * from_arg: the name is the call's second argument (not the setting); when
 * that argument is a Const (a policy's purpose), a memo of the same cache
 * generation answers without comparing the name again.
 */
static inline CvPurpose *
cv_purpose_find(FunctionCallInfo fcinfo, const char *name, int len, bool from_arg)
{
	CvPurposeMemo *m = (CvPurposeMemo *) fcinfo->flinfo->fn_extra;
	char		buf[NAMEDATALEN];

	if (m != NULL && from_arg && m->by_const && m->generation == cv_cache_generation)
		return m->purpose;
	if (len <= 0 || len >= NAMEDATALEN)
		return NULL;
	if (m == NULL)
	{
		m = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CvPurposeMemo));
		m->arg_const = -1;
		fcinfo->flinfo->fn_extra = m;
	}
	if (m->generation == cv_cache_generation && m->len == len && memcmp(m->name, name, len) == 0)
		return m->purpose;
	memcpy(buf, name, len);
	buf[len] = '\0';
	m->purpose = hash_search(cv_purposes, buf, HASH_FIND, NULL);
	memcpy(m->name, name, len);
	m->len = len;
	m->generation = cv_cache_generation;
	if (from_arg && m->arg_const < 0)
		m->arg_const = cv_arg_is_const(fcinfo->flinfo, 1) ? 1 : 0;
	m->by_const = from_arg && m->arg_const == 1;
	return m->purpose;
}

/* whether the current role may act under p */
static bool
cv_purpose_allowed(CvPurpose *p)
{
	Oid			user = GetUserId();
	int			i;

	if (p->checked_user == user && p->checked_gen == cv_snap_generation)
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
	p->checked_gen = cv_snap_generation;
	return p->user_allowed;
}

/*
 * The consent ledger's chain head row, as this transaction last wrote it:
 * appends after the first one of a transaction go to it by its ctid instead
 * of looking for the newest of the versions the transaction left behind
 * (which made a bulk grant quadratic).  Valid for the transaction that set
 * it, forgotten at its end and on any subtransaction abort.
 */

PG_FUNCTION_INFO_V1(cv_ledger_head_tid);
PG_FUNCTION_INFO_V1(cv_ledger_head_remember);

/* _ledger_head_tid(): the chain head's ctid written by this transaction, or NULL */
Datum
cv_ledger_head_tid(PG_FUNCTION_ARGS)
{
	ItemPointer tid;

	if (!cv_head_valid || cv_head_lxid != CV_PROC_LXID(MyProc))
		PG_RETURN_NULL();
	tid = (ItemPointer) palloc(sizeof(ItemPointerData));
	ItemPointerCopy(&cv_head_tid, tid);
	PG_RETURN_POINTER(tid);
}

/* _ledger_head_remember(tid): the chain head's ctid just written by this transaction */
Datum
cv_ledger_head_remember(PG_FUNCTION_ARGS)
{
	ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(0);

	ItemPointerCopy(tid, &cv_head_tid);
	cv_head_lxid = CV_PROC_LXID(MyProc);
	cv_head_valid = true;
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cv_has_consent);
PG_FUNCTION_INFO_V1(cv_may_process);
PG_FUNCTION_INFO_V1(cv_may_process_int8);
PG_FUNCTION_INFO_V1(cv_consent_changed);
PG_FUNCTION_INFO_V1(cv_consent_cache_builds);

PG_FUNCTION_INFO_V1(cv_consent_cache_source);

/*
 * _consent_cache_source(purpose): what answers this backend's consent checks
 * of a purpose for the current snapshot: 'shared <version>', 'local' (its own
 * cache), 'probe' (an index probe per call), or 'unloaded'; NULL for an
 * unknown purpose.  Prepares the cache for the snapshot like a check does
 * (tests).
 */
Datum
cv_consent_cache_source(PG_FUNCTION_ARGS)
{
	text	   *purpose = PG_GETARG_TEXT_PP(0);
	CvPurpose  *p;

	(void) cv_consent_prepare();
	p = cv_purpose_find(fcinfo, VARDATA_ANY(purpose), VARSIZE_ANY_EXHDR(purpose), true);
	if (p == NULL)
		PG_RETURN_NULL();
	switch (p->state)
	{
		case CV_PURPOSE_SHARED:
			PG_RETURN_TEXT_P(cstring_to_text(psprintf("shared " UINT64_FORMAT,
													  CvScacheVersion(p->shared))));
		case CV_PURPOSE_LOADED:
			PG_RETURN_TEXT_P(cstring_to_text("local"));
		case CV_PURPOSE_PROBE:
			PG_RETURN_TEXT_P(cstring_to_text("probe"));
		default:
			PG_RETURN_TEXT_P(cstring_to_text("unloaded"));
	}
}

/* _consent_cache_builds(): how often this backend has read its consent cache (tests) */
Datum
cv_consent_cache_builds(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) cv_consent_builds);
}

/* has_consent(subject, purpose): an explicit, unexpired, unwithdrawn opt-in exists */
Datum
cv_has_consent(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	text	   *purpose = PG_GETARG_TEXT_PP(1);
	Snapshot	snap = cv_consent_prepare();
	CvPurpose  *p = cv_purpose_find(fcinfo, VARDATA_ANY(purpose), VARSIZE_ANY_EXHDR(purpose), true);
	const char *s = VARDATA_ANY(subject);
	int			len = VARSIZE_ANY_EXHDR(subject);

	PG_RETURN_BOOL(p != NULL && cv_consent_lookup(p, s, len, cv_subject_number(s, len), snap));
}

/*
 * A text argument as PG_GETARG_TEXT_PP gives it, without a function call for
 * the usual value that needs no detoasting (short or plain, in line).
 */
static inline text *
cv_arg_text(FunctionCallInfo fcinfo, int argno)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(argno));

	if (VARATT_IS_COMPRESSED(v) || VARATT_IS_EXTERNAL(v))
		v = pg_detoast_datum_packed(v);
	return (text *) v;
}

/*
 * Whether the fast path memo of a may_process call site answers this call
 * exactly as the full path would: the purpose is the call's constant
 * argument, the cache was not rebuilt or dropped since the memo, the query's
 * snapshot is still the one last served (so cv_consent_prepare would change
 * nothing, and the role check memo of that snapshot stands), in the same
 * transaction (start time), for the same current role.
 */
static pg_attribute_always_inline bool
cv_fast_valid(FunctionCallInfo fcinfo, const CvPurposeMemo *m)
{
	return m->fast_sc != NULL && m->fast_cache_gen == cv_cache_generation &&
		m->fast_snap_gen == cv_snap_generation && cv_cache_valid &&
		m->fast_lxid == CV_PROC_LXID(MyProc) &&
		PG_NARGS() > 1 && !PG_ARGISNULL(1) &&
		cv_same_as_last_snap(cv_query_snapshot()) && m->fast_user == GetUserId();
}

/*
 * After a call answered from a shared version for the constant purpose of
 * its call site: arm the fast path for the calls that follow.
 */
static void
cv_fast_arm(FunctionCallInfo fcinfo, CvPurpose *p)
{
	CvPurposeMemo *m = (CvPurposeMemo *) fcinfo->flinfo->fn_extra;

	if (m == NULL || !m->by_const || m->purpose != p || m->generation != cv_cache_generation ||
		p->state != CV_PURPOSE_SHARED || !cv_cache_valid)
		return;
	m->fast_sc = p->shared;
	m->fast_cache_gen = cv_cache_generation;
	m->fast_snap_gen = cv_snap_generation;
	m->fast_lxid = CV_PROC_LXID(MyProc);
	m->fast_user = GetUserId();
	m->fast_now = GetCurrentTransactionStartTimestamp();
}

/*
 * Shared body of may_process: false for an unset or unknown purpose or one
 * the current role is not allowed; true for a purpose whose lawful basis is
 * not consent; else the subject's live opt-in.
 */
static pg_attribute_always_inline bool
cv_may_process_common(FunctionCallInfo fcinfo, const char *s, int len, int64 num)
{
	const char *pname;
	int			plen;
	Snapshot	snap;
	CvPurpose  *p;
	bool		from_arg = PG_NARGS() > 1 && !PG_ARGISNULL(1);
	bool		answer;

	if (from_arg)
	{
		text	   *pt = cv_arg_text(fcinfo, 1);

		pname = VARDATA_ANY(pt);
		plen = VARSIZE_ANY_EXHDR(pt);
	}
	else
	{
		pname = cv_purpose ? cv_purpose : "";
		plen = strlen(pname);
	}
	if (plen == 0)
		return false;
	snap = cv_consent_prepare();
	p = cv_purpose_find(fcinfo, pname, plen, from_arg);
	if (p == NULL || !cv_purpose_allowed(p))
		return false;
	if (!p->requires_consent)
		return true;
	answer = cv_consent_lookup(p, s, len, num, snap);
	if (from_arg && p->state == CV_PURPOSE_SHARED)
		cv_fast_arm(fcinfo, p);
	return answer;
}

/* may_process(subject text, purpose): NULL subject gives false */
Datum
cv_may_process(PG_FUNCTION_ARGS)
{
	text	   *subject;
	const CvPurposeMemo *m = (const CvPurposeMemo *) fcinfo->flinfo->fn_extra;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	subject = cv_arg_text(fcinfo, 0);
	/* a policy's rows after the first: straight to the shared version */
	if (m != NULL && cv_fast_valid(fcinfo, m))
		PG_RETURN_BOOL(cv_sc_lookup_text(m->fast_sc, VARDATA_ANY(subject),
										 VARSIZE_ANY_EXHDR(subject), m->fast_now));
	PG_RETURN_BOOL(cv_may_process_common(fcinfo, VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject),
										 cv_subject_number(VARDATA_ANY(subject),
														   VARSIZE_ANY_EXHDR(subject))));
}

/* may_process(subject bigint, purpose): the same as for subject::text, without the text */
Datum
cv_may_process_int8(PG_FUNCTION_ARGS)
{
	int64		v;
	char		buf[32];
	int			len;
	const CvPurposeMemo *m = (const CvPurposeMemo *) fcinfo->flinfo->fn_extra;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	v = PG_GETARG_INT64(0);
	/* a policy's rows after the first: straight to the shared version */
	if (m != NULL && v >= 0 && v < INT64CONST(1000000000000000000) && cv_fast_valid(fcinfo, m))
	{
		if (likely(m->fast_sc->fam[0].has_bitmap))
			PG_RETURN_BOOL(cv_sc_family_answer(m->fast_sc, &m->fast_sc->fam[0], v, m->fast_now));
		PG_RETURN_BOOL(CvScacheLookup(m->fast_sc, NULL, 0, v, m->fast_now));
	}
	if (v >= 0 && v < INT64CONST(1000000000000000000))
		PG_RETURN_BOOL(cv_may_process_common(fcinfo, NULL, 0, v));	/* text made only if needed */
	len = pg_lltoa(v, buf);
	PG_RETURN_BOOL(cv_may_process_common(fcinfo, buf, len, -1));
}

/*
 * Trigger on the consent tables: this transaction changed them.  Statement
 * triggers serve ordinary sessions; BEFORE ROW triggers enabled for replica
 * sessions serve the logical replication apply worker, which fires row
 * triggers only.
 */
Datum
cv_consent_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function must be called as a trigger")));
	cv_consent_dirty = true;
	cv_cache_valid = false;

	/*
	 * purposes: grant_consent's purposes of this session and, at commit, of
	 * every session are read again (the row trigger purposes_changed_row
	 * fires in every session, replica ones included)
	 */
	if (strcmp(RelationGetRelationName(trigdata->tg_relation), "purposes") == 0 &&
		RelationGetNamespace(trigdata->tg_relation) == get_namespace_oid(CV_SCHEMA, true))
		ImpPurposesChanged(trigdata->tg_relation);
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) && TRIGGER_FIRED_BEFORE(trigdata->tg_event))
	{
		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			return PointerGetDatum(trigdata->tg_newtuple);
		return PointerGetDatum(trigdata->tg_trigtuple);
	}
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(cv_ddl_links_tables);

/*
 * _ddl_links_tables(pg_ddl_command): whether a command made a table a
 * partition or an inheritance child (CREATE TABLE ... PARTITION OF or
 * INHERITS, ALTER TABLE ... ATTACH PARTITION or INHERIT).  The consent
 * policy event trigger copies policies only then: other ALTER TABLEs (such as
 * the ENABLE ROW LEVEL SECURITY of a restore) must not add policies that the
 * restore is about to create itself.
 */
Datum
cv_ddl_links_tables(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	ListCell   *lc;

	if (cmd == NULL)
		PG_RETURN_BOOL(false);
	switch (cmd->type)
	{
		case SCT_Simple:
			if (cmd->parsetree != NULL && IsA(cmd->parsetree, CreateStmt))
			{
				CreateStmt *cs = (CreateStmt *) cmd->parsetree;

				PG_RETURN_BOOL(cs->inhRelations != NIL || cs->partbound != NULL);
			}
			break;
		case SCT_AlterTable:
			foreach(lc, cmd->d.alterTable.subcmds)
			{
				CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);

				if (sub->parsetree != NULL && IsA(sub->parsetree, AlterTableCmd))
				{
					AlterTableType t = ((AlterTableCmd *) sub->parsetree)->subtype;

					if (t == AT_AttachPartition || t == AT_AddInherit)
						PG_RETURN_BOOL(true);
				}
			}
			break;
		default:
			break;
	}
	PG_RETURN_BOOL(false);
}
