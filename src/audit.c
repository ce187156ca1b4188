/*-------------------------------------------------------------------------
 * audit.c
 *		The decrypt audit (customer_vault.audit_decrypt): per-statement
 *		counts of the values each key opened for the caller, a queue in
 *		shared memory, and the background workers that write the queue to
 *		customer_vault.access_log_entries in transactions of their own.
 *
 * Counting.  CvOpenEnvelope() calls CvAuditNoteDecrypt() after every value
 * it opened for a reader (CV_OPEN_READ).  The backend adds it to a small
 * local table (key id -> count, and in 'value' mode the first
 * CV_AUDIT_MAX_SUBJECTS distinct subjects of that key with their counts;
 * values of further subjects are counted as "more").  The table is
 * flushed, one record per key, at the end of every top-level executor run
 * (ExecutorRun, ExecutorFinish and ExecutorEnd at nesting level 0), before
 * a commit or prepare, and on abort: so an error in the middle of a
 * statement, a subtransaction rolled back by an exception block, a
 * ROLLBACK, a READ ONLY or SERIALIZABLE transaction all still record what
 * was decrypted before (the counts are backend memory, not transactional).
 *
 * The queue.  A fixed array of CV_AUDIT_SLOTS records in shared memory
 * under one LWLock (not shm_mq: shm_mq is a single-reader, single-writer
 * ring between two processes, while here every backend writes and one
 * worker per database reads only its own database's records, in the
 * order they were queued).  A statement's first value under a key
 * reserves its record's slot (CvAuditNoteDecrypt -> cv_audit_reserve)
 * before the value is returned; a backend that finds the queue full waits
 * on a condition variable for the worker to free slots, at most
 * customer_vault.audit_wait milliseconds; then the decrypt fails (ERROR,
 * 55000) before the value leaves, and a queue holding records of this
 * database marks it failing.  The flush (end of statement, commit, abort)
 * queues each record into its reservation: it never waits and never fails
 * for room, so no record of a returned value goes only to the server log.
 * No database may hold (queued and reserved) more than its share of the
 * queue (customer_vault.audit_queue_share, 25% by default): past it, its
 * backends wait and are refused exactly as if the queue were full, while
 * other databases keep the rest, so one database whose writer hangs (its
 * owner can make it wait for a lock) does not refuse decrypts elsewhere.
 * A backend that exits with reservations (pg_terminate_backend, FATAL)
 * queues their records on abort, or at the latest from an on_shmem_exit
 * callback; a crash reinitializes the queue.
 *
 * The workers.  One dynamic background worker per database with queued
 * records, started on demand by the backend that queues one, connected to
 * that database (also when it refuses connections), as the bootstrap
 * superuser with its own settings pinned over whatever ALTER DATABASE or
 * ALTER ROLE ... SET made of them (read-only transactions, timeouts, SET
 * ROLE, search_path, ...); it writes its records in queue order through
 * customer_vault._access_log_append() (the single writer of the hash
 * chain in that database), up to CV_AUDIT_BATCH a transaction (woken from
 * a wait, it first lets the records of the next CV_AUDIT_GATHER_MS join),
 * commits, frees the slots, and exits after
 * CV_AUDIT_IDLE_MS without work (so that it does not keep DROP DATABASE
 * waiting).  A batch that fails is written record by record, each in its
 * own transaction; a record that fails on its own is written in a reduced
 * form (no purpose, application, client or subjects) and logged in full.
 *
 * Failing closed.  Records that cannot be written stay queued and are
 * retried (backing off to CV_AUDIT_RETRY_MAX_MS); while any are left, or
 * the writer exited in error or could not connect with records left, or
 * records waited longer than audit_wait (at least 5 s) without any being
 * written, the database is "failing": CvAuditNoteDecrypt refuses every
 * value there (ERROR 55000) before it is returned, and relaunches the
 * writer when none runs.  The writer's next complete write reopens it.
 * Records are dropped (to the server log) only when they can never be
 * written: the extension or its access_log is gone from the database, the
 * database was dropped, or the writer is stopped (server shutdown,
 * pg_terminate_backend) while failing.
 *
 * The server log fallback, one line per record, used on a hot standby
 * (nothing can be written there), without the library in
 * shared_preload_libraries (no queue: the session is warned once), and for
 * records that could not be queued or can never be written:
 *   customer_vault audit: reason=standby db=16384 user_id=10 role_id=10
 *   pid=123 key_id=3 values=42 query_id=0 purpose="billing" app="psql"
 *   client="[local]" subjects=0 more=0
 * It carries no plaintext, no ciphertext and no subject: in 'value' mode
 * only the number of distinct subjects.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* EnableQueryId(): utils/queryjumble.h until 15, nodes/queryjumble.h from 16 */
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

#define CV_AUDIT_SLOTS			1024	/* records the queue holds */
#define CV_AUDIT_MAX_DBS		32	/* databases with a worker at once */
#define CV_AUDIT_MAX_SUBJECTS	16	/* distinct subjects per record */
#define CV_AUDIT_SUBJECT_BYTES	1024	/* their text, all together */
#define CV_AUDIT_BATCH			64	/* records per worker transaction */
#define CV_AUDIT_IDLE_MS		2000	/* a worker's life without work */
#define CV_AUDIT_GATHER_MS		5	/* a woken writer lets more records join this long */
#define CV_AUDIT_LAUNCH_MS		10000	/* a launch not attached by then failed */
#define CV_AUDIT_STALL_MIN_MS	5000	/* records unwritten this long (or audit_wait): failing */

#define CV_SLOT_FREE	0
#define CV_SLOT_FILLED	1
#define CV_SLOT_TAKEN	2
#define CV_SLOT_RESERVED	3	/* held by a backend for a record it will queue */

int			cv_audit_decrypt = CV_AUDIT_STATEMENT;
int			cv_audit_queue_size = CV_AUDIT_SLOTS;
int			cv_audit_queue_share = 25;
int			cv_audit_wait = 5000;

/* one queued record: one statement (or executor run) and one key */
typedef struct CvAuditRecord
{
	int			state;			/* CV_SLOT_* */
	uint64		seq;			/* queue order */
	Oid			dbid;
	TimestampTz at;				/* statement start */
	Oid			user_id;		/* session user */
	Oid			role_id;		/* current role */
	int32		pid;
	uint32		key_id;
	int64		values;
	int64		query_id;
	char		purpose[NAMEDATALEN];
	char		app[NAMEDATALEN];
	char		client[64];
	bool		value_mode;
	int			nsubjects;
	int64		more;			/* values of subjects beyond the bound */
	int32		subj_count[CV_AUDIT_MAX_SUBJECTS];
	uint16		subj_len[CV_AUDIT_MAX_SUBJECTS];
	char		subj[CV_AUDIT_SUBJECT_BYTES];	/* the subjects, back to back */
} CvAuditRecord;

/*
 * The state of one database's audit: its writer, its records in the queue,
 * and whether they can be written.  An entry lives while the database has a
 * writer, queued records or a failure; "failing" closes the database's
 * decrypts (CvAuditNoteDecrypt refuses them) until the writer has written
 * again.
 */
typedef struct CvAuditWorkerSlot
{
	Oid			dbid;			/* InvalidOid: slot free */
	int			pid;			/* the writer's, 0 when none is running */
	bool		launching;		/* a writer was registered at launched */
	Latch	   *latch;
	TimestampTz launched;
	int			queued;			/* records of this database not yet freed */
	TimestampTz progress_at;	/* last record written, or queued into an empty queue */
	bool		failing;		/* records could not be written: decrypts refused */
	int			reserved;		/* slots reserved by this database's backends */
	/* queued + reserved: what the database holds, at most its share (cv_audit_db_cap) */
} CvAuditWorkerSlot;

typedef struct CvAuditShared
{
	LWLock	   *lock;
	ConditionVariable freed;	/* broadcast when slots are freed */
	pg_atomic_uint32 nfailing;	/* entries with failing set (read without the lock) */
	uint64		next_seq;
	int			used;			/* slots not free */
	int			hint;			/* where to look for a free slot first */
	CvAuditWorkerSlot workers[CV_AUDIT_MAX_DBS];
	CvAuditRecord rec[CV_AUDIT_SLOTS];
} CvAuditShared;

static CvAuditShared *cv_audit = NULL;

/* this backend's counts since the last flush, one entry per key */
typedef struct CvAuditPending
{
	uint32		key_id;
	int			slot;			/* its reserved queue slot, -1 when none */
	int64		values;
	int			nsubjects;
	int64		more;
	int			subj_used;
	int32		subj_count[CV_AUDIT_MAX_SUBJECTS];
	uint16		subj_len[CV_AUDIT_MAX_SUBJECTS];
	char		subj[CV_AUDIT_SUBJECT_BYTES];
} CvAuditPending;

#define CV_AUDIT_MAX_PENDING	16	/* keys per flush; more flush early */

static CvAuditPending *cv_pending = NULL;	/* CV_AUDIT_MAX_PENDING entries */
static int	cv_npending = 0;
static int	cv_last_pending = 0;
static bool cv_pending_value_mode = false;
static int	cv_exec_nesting = 0;
static bool cv_warned_no_queue = false;
static bool cv_queue_failed = false;	/* this transaction's wait timed out */
static bool cv_exit_registered = false;	/* cv_audit_backend_exit is set up */

static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

static void cv_audit_flush(bool can_wait, bool can_error);
static void cv_audit_gate(void);
static void cv_audit_ensure_worker(void);
static int	cv_audit_reserve(bool can_wait, bool can_error);
static void cv_audit_enqueue(const CvAuditPending *p, int slot);
static void cv_audit_release(int slot);
static void cv_audit_backend_exit(int code, Datum arg);

/* shared memory this module needs */
static Size
cv_audit_shmem_size(void)
{
	return MAXALIGN(sizeof(CvAuditShared));
}

/* ask for the queue's memory and lock (from the shmem_request hook) */
void
AuditShmemRequest(void)
{
	RequestAddinShmemSpace(cv_audit_shmem_size());
	RequestNamedLWLockTranche("customer_vault_audit", 1);
}

/* create or attach the queue (from the shmem_startup hook) */
void
AuditShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cv_audit = ShmemInitStruct("customer_vault audit queue", cv_audit_shmem_size(), &found);
	if (!found)
	{
		memset(cv_audit, 0, cv_audit_shmem_size());
		cv_audit->lock = &(GetNamedLWLockTranche("customer_vault_audit"))->lock;
		ConditionVariableInit(&cv_audit->freed);
		pg_atomic_init_u32(&cv_audit->nfailing, 0);
		cv_audit->next_seq = 1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* the subject of a value's context: the row part of a protected column's context, else the context */
static void
cv_audit_subject(const char *ctx, int ctxlen, const char **subj, int *len)
{
	int			i = 0;
	int			n = 0;

	*subj = ctx;
	*len = ctxlen;
	/* protect_column's context: "<length>:<schema.table.column>" then the row's context value */
	while (i < ctxlen && i < 6 && ctx[i] >= '0' && ctx[i] <= '9')
		n = n * 10 + (ctx[i++] - '0');
	if (i == 0 || i >= ctxlen || ctx[i] != ':' || i + 1 + n > ctxlen)
		return;
	*subj = ctx + i + 1 + n;
	*len = ctxlen - (i + 1 + n);
}

/* count one value opened for the caller under a key (called by CvOpenEnvelope) */
void
CvAuditNoteDecrypt(uint32 key_id, const char *ctx, int ctxlen)
{
	CvAuditPending *p;
	int			i;

	if (cv_audit_decrypt == CV_AUDIT_OFF)
		return;
	/* fail closed: no value leaves while this database's records cannot be written */
	if (cv_audit != NULL && pg_atomic_read_u32(&cv_audit->nfailing) > 0)
		cv_audit_gate();
	if (cv_pending == NULL)
		cv_pending = MemoryContextAllocZero(TopMemoryContext,
											sizeof(CvAuditPending) * CV_AUDIT_MAX_PENDING);
	if (cv_last_pending < cv_npending && cv_pending[cv_last_pending].key_id == key_id)
		p = &cv_pending[cv_last_pending];
	else
	{
		for (i = 0; i < cv_npending; i++)
			if (cv_pending[i].key_id == key_id)
				break;
		if (i == cv_npending)
		{
			int			slot = -1;

			if (cv_npending == CV_AUDIT_MAX_PENDING)
			{
				cv_audit_flush(true, true);
				i = 0;
			}
			/* the record's slot, before this key's first value is returned (refuses when none) */
			if (cv_audit != NULL && !RecoveryInProgress())
			{
				if (!cv_exit_registered)
				{
					on_shmem_exit(cv_audit_backend_exit, (Datum) 0);
					cv_exit_registered = true;
				}
				slot = cv_audit_reserve(true, true);
			}
			p = &cv_pending[i];
			p->key_id = key_id;
			p->slot = slot;
			p->values = 0;
			p->nsubjects = 0;
			p->more = 0;
			p->subj_used = 0;
			cv_npending = i + 1;
		}
		cv_last_pending = i;
		p = &cv_pending[i];
	}
	p->values++;
	if (cv_audit_decrypt == CV_AUDIT_VALUE)
	{
		const char *s;
		int			len;
		int			off = 0;

		cv_pending_value_mode = true;
		if (ctx == NULL)
		{
			p->more++;			/* no context: no subject to name */
			return;
		}
		cv_audit_subject(ctx, ctxlen, &s, &len);
		for (i = 0; i < p->nsubjects; i++)
		{
			if (p->subj_len[i] == len && memcmp(p->subj + off, s, len) == 0)
			{
				p->subj_count[i]++;
				return;
			}
			off += p->subj_len[i];
		}
		if (p->nsubjects < CV_AUDIT_MAX_SUBJECTS && len > 0 &&
			p->subj_used + len <= CV_AUDIT_SUBJECT_BYTES)
		{
			memcpy(p->subj + p->subj_used, s, len);
			p->subj_len[p->nsubjects] = len;
			p->subj_count[p->nsubjects] = 1;
			p->nsubjects++;
			p->subj_used += len;
		}
		else
			p->more++;
	}
}

/* a string for the log line, double-quoted with " and \ escaped */
static void
cv_audit_quote(StringInfo buf, const char *s)
{
	appendStringInfoChar(buf, '"');
	for (; s != NULL && *s; s++)
	{
		if (*s == '"' || *s == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *s);
	}
	appendStringInfoChar(buf, '"');
}

/* the server log line of a record that cannot be (or was not) written to access_log */
static void
cv_audit_log_line(const CvAuditRecord *r, const char *reason)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "reason=%s db=%u user_id=%u role_id=%u pid=%d key_id=%u values=" INT64_FORMAT
					 " query_id=" INT64_FORMAT " purpose=",
					 reason, r->dbid, r->user_id, r->role_id, r->pid, r->key_id, r->values, r->query_id);
	cv_audit_quote(&buf, r->purpose);
	appendStringInfoString(&buf, " app=");
	cv_audit_quote(&buf, r->app);
	appendStringInfoString(&buf, " client=");
	cv_audit_quote(&buf, r->client);
	appendStringInfo(&buf, " subjects=%d more=" INT64_FORMAT, r->nsubjects, r->more);
	ereport(LOG_SERVER_ONLY,
			(errmsg("customer_vault audit: %s", buf.data),
			 errhidestmt(true), errhidecontext(true)));
	pfree(buf.data);
}

/* the client's address as text, empty for a Unix socket or none (computed once) */
static const char *
cv_audit_client(void)
{
	static char client[64];
	static bool done = false;

	if (!done)
	{
		LOCAL_FCINFO(fcinfo, 0);
		Datum		d;

		InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
		d = inet_client_addr(fcinfo);
		client[0] = '\0';
		if (!fcinfo->isnull)
			strlcpy(client, DatumGetCString(DirectFunctionCall1(inet_out, d)), sizeof(client));
		done = true;
	}
	return client;
}

/* copy a string into a buffer of size bytes, cut at a character boundary (never half a character) */
static void
cv_audit_clip(char *dst, const char *src, int size)
{
	int			len;

	if (src == NULL)
		src = "";
	len = strlen(src);
	if (len >= size)
		len = pg_mbcliplen(src, len, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* fill a record from a pending entry and the session's state */
static void
cv_audit_fill(CvAuditRecord *r, const CvAuditPending *p)
{
	const char *app = application_name;

	r->dbid = MyDatabaseId;
	r->at = GetCurrentStatementStartTimestamp();
	r->user_id = GetSessionUserId();
	r->role_id = GetUserId();
	r->pid = MyProcPid;
	r->key_id = p->key_id;
	r->values = p->values;
	r->query_id = (int64) pgstat_get_my_query_id();
	cv_audit_clip(r->purpose, cv_purpose, NAMEDATALEN);
	cv_audit_clip(r->app, app, NAMEDATALEN);
	cv_audit_clip(r->client, cv_audit_client(), sizeof(r->client));
	r->value_mode = cv_pending_value_mode;
	r->nsubjects = p->nsubjects;
	r->more = p->more;
	memcpy(r->subj_count, p->subj_count, sizeof(r->subj_count));
	memcpy(r->subj_len, p->subj_len, sizeof(r->subj_len));
	memcpy(r->subj, p->subj, p->subj_used);
}

/* this database's entry (under the lock), or -1 */
static int
cv_audit_db_entry(Oid dbid)
{
	int			i;

	for (i = 0; i < CV_AUDIT_MAX_DBS; i++)
		if (cv_audit->workers[i].dbid == dbid)
			return i;
	return -1;
}

/*
 * The slots one database may hold (queued and reserved records): its share
 * (customer_vault.audit_queue_share, percent) of the queue as this session
 * sees it (audit_queue_size), at least one.
 */
static int
cv_audit_db_cap(int limit)
{
	return Max(1, (int) ((int64) limit * cv_audit_queue_share / 100));
}

/* mark an entry failing or not (under the exclusive lock), keeping nfailing in step */
static void
cv_audit_set_failing(CvAuditWorkerSlot *s, bool failing)
{
	if (s->failing == failing)
		return;
	s->failing = failing;
	if (failing)
		pg_atomic_fetch_add_u32(&cv_audit->nfailing, 1);
	else
		pg_atomic_fetch_sub_u32(&cv_audit->nfailing, 1);
}

/* free an entry with no writer, nothing queued and no failure (under the exclusive lock) */
static void
cv_audit_maybe_free_entry(CvAuditWorkerSlot *s)
{
	if (s->pid == 0 && !s->launching && s->queued <= 0 && s->reserved <= 0 && !s->failing)
	{
		s->dbid = InvalidOid;
		s->queued = 0;
		s->latch = NULL;
	}
}

/*
 * A writer for this database: woken up when it runs, launched when none
 * runs (a launch that never attached is retried after CV_AUDIT_LAUNCH_MS; a
 * failing database gets at most one launch a second).
 */
static void
cv_audit_ensure_worker(void)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	int			slot;
	bool		launch = false;
	Latch	   *latch = NULL;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	slot = cv_audit_db_entry(MyDatabaseId);
	if (slot >= 0)
	{
		CvAuditWorkerSlot *s = &cv_audit->workers[slot];

		if (s->pid != 0)
			latch = s->latch;
		else if (s->launching ?
				 TimestampDifferenceExceeds(s->launched, now, CV_AUDIT_LAUNCH_MS) :
				 (!s->failing || TimestampDifferenceExceeds(s->launched, now, 1000)))
		{
			s->launching = true;
			s->launched = now;
			launch = true;
		}
	}
	LWLockRelease(cv_audit->lock);

	if (latch != NULL)
		SetLatch(latch);
	if (!launch)
		return;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "customer_vault", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "cv_audit_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "customer_vault audit writer for database %u", MyDatabaseId);
	strlcpy(w.bgw_type, "customer_vault audit writer", BGW_MAXLEN);
	w.bgw_main_arg = Int32GetDatum(slot);
	memcpy(w.bgw_extra, &MyDatabaseId, sizeof(Oid));
	w.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
	{
		/* no free worker process: the records stay queued, retried on the next record */
		LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
		if (cv_audit->workers[slot].dbid == MyDatabaseId && cv_audit->workers[slot].pid == 0)
			cv_audit->workers[slot].launching = false;
		LWLockRelease(cv_audit->lock);
	}
}

/*
 * Refuse a decrypt while this database's audit records cannot be written
 * (called when some database is failing): relaunch its writer if none runs,
 * then raise the error.
 */
static void
cv_audit_gate(void)
{
	bool		failing = false;
	int			slot;

	LWLockAcquire(cv_audit->lock, LW_SHARED);
	slot = cv_audit_db_entry(MyDatabaseId);
	if (slot >= 0)
		failing = cv_audit->workers[slot].failing;
	LWLockRelease(cv_audit->lock);
	if (!failing)
		return;
	cv_audit_ensure_worker();
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("decryption refused: the decrypt audit of this database cannot be written"),
			 errdetail("The customer_vault audit writer could not write earlier records to customer_vault.access_log; no value is decrypted until it has."),
			 errhint("See the server log for the audit writer's error (backend type \"customer_vault audit writer\"); decryption resumes by itself once the writer succeeds.")));
}

/*
 * Whether this database's records waited for a writer longer than
 * audit_wait (at least CV_AUDIT_STALL_MIN_MS) without any being written; if
 * so it is marked failing (under the exclusive lock).
 */
static bool
cv_audit_check_stall(CvAuditWorkerSlot *s, TimestampTz now)
{
	if (s->queued <= 0 || s->failing ||
		!TimestampDifferenceExceeds(s->progress_at, now, Max(cv_audit_wait, CV_AUDIT_STALL_MIN_MS)))
		return false;
	cv_audit_set_failing(s, true);
	return true;
}

/* the server log line of a database found stalled */
static void
cv_audit_log_stall(void)
{
	ereport(LOG_SERVER_ONLY,
			(errmsg("customer_vault audit: the writer of database %u has written no record for %d ms; decryption there is refused until it does",
					MyDatabaseId, Max(cv_audit_wait, CV_AUDIT_STALL_MIN_MS)),
			 errhidestmt(true), errhidecontext(true)));
}

/*
 * Reserve a queue slot for the record of a key a statement starts to use,
 * before its first value is returned: the record then always fits when it
 * is queued (at the statement's end or on abort).  Waits for a free slot
 * (and a free database entry) at most audit_wait if can_wait; then a queue
 * still full of this database's records marks it failing, and with
 * can_error the decrypt is refused (ERROR 55000), else -1 is returned.
 */
static int
cv_audit_reserve(bool can_wait, bool can_error)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz start = now;
	TimestampTz deadline = now + (TimestampTz) cv_audit_wait * 1000;
	bool		sleeping = false;
	bool		stalled = false;
	bool		mine_queued = false;
	bool		over_share = false;
	int			got = -1;
	int			limit = Min(cv_audit_queue_size, CV_AUDIT_SLOTS);
	int			cap = cv_audit_db_cap(limit);

	for (;;)
	{
		long		remain;
		int			e;
		int			i;

		LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
		e = cv_audit_db_entry(MyDatabaseId);
		/* a new entry for this database (none free: wait like for a slot) */
		for (i = 0; e < 0 && cv_audit->used < limit && i < CV_AUDIT_MAX_DBS; i++)
		{
			CvAuditWorkerSlot *s = &cv_audit->workers[i];

			if (s->dbid != InvalidOid)
				continue;
			memset(s, 0, sizeof(*s));
			s->dbid = MyDatabaseId;
			e = i;
		}
		if (e >= 0)
		{
			CvAuditWorkerSlot *s = &cv_audit->workers[e];

			stalled = cv_audit_check_stall(s, now);
			mine_queued = s->queued > 0;
			/* this database's share: other databases keep their room when its writer hangs */
			over_share = s->queued + s->reserved >= cap;
			for (i = 0; !stalled && !s->failing && !over_share && cv_audit->used < limit &&
				 i < CV_AUDIT_SLOTS; i++)
			{
				int			k = (cv_audit->hint + i) % CV_AUDIT_SLOTS;
				CvAuditRecord *r = &cv_audit->rec[k];

				if (r->state != CV_SLOT_FREE)
					continue;
				cv_audit->hint = (k + 1) % CV_AUDIT_SLOTS;
				r->state = CV_SLOT_RESERVED;
				r->dbid = MyDatabaseId;
				cv_audit->used++;
				s->reserved++;
				got = k;
				break;
			}
			if (got < 0 && s->failing)
				stalled = true; /* refused like by the gate, below */
		}
		LWLockRelease(cv_audit->lock);
		if (got >= 0)
			break;
		if (stalled)
		{
			if (!can_error)
				break;
			cv_audit_log_stall();
			if (sleeping)
				ConditionVariableCancelSleep();
			cv_audit_gate();	/* raises the refusal */
			break;
		}
		/* a writer for this database: launched, or woken up */
		cv_audit_ensure_worker();
		if (!can_wait)
			break;
		now = GetCurrentTimestamp();
		remain = (long) ((deadline - now) / 1000);
		if (remain <= 0)
			break;
		if (!sleeping)
		{
			ConditionVariablePrepareToSleep(&cv_audit->freed);
			sleeping = true;
			continue;			/* recheck after preparing, as the API asks */
		}
		(void) ConditionVariableTimedSleep(&cv_audit->freed, Min(remain, 100),
										   PG_WAIT_EXTENSION);
		now = GetCurrentTimestamp();
	}
	if (sleeping)
		ConditionVariableCancelSleep();
	if (got >= 0 || stalled)
		return got;
	/* full after the wait and none of this database's queued records written meanwhile: stalled */
	if (can_wait && mine_queued)
	{
		int			e;
		bool		marked = false;

		LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
		e = cv_audit_db_entry(MyDatabaseId);
		if (e >= 0 && cv_audit->workers[e].queued > 0 && !cv_audit->workers[e].failing &&
			cv_audit->workers[e].progress_at < start)
		{
			cv_audit_set_failing(&cv_audit->workers[e], true);
			marked = true;
		}
		LWLockRelease(cv_audit->lock);
		if (marked)
			cv_audit_log_stall();
	}
	if (can_error && over_share)
	{
		cv_queue_failed = true;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database's share of the decrypt audit queue is full"),
				 errdetail("Its records fill the %d slots of its share (customer_vault.audit_queue_share = %d%%) for %d ms; the value is refused rather than returned unrecorded.",
						   cap, cv_audit_queue_share, cv_audit_wait),
				 errhint("Check that the customer_vault audit writer of this database is running (pg_stat_activity) and not waiting for a lock on customer_vault.access_log_entries.")));
	}
	if (can_error)
	{
		cv_queue_failed = true;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the decrypt audit queue is full"),
				 errdetail("No room in the queue of access_log records for %d ms; the value is refused rather than returned unrecorded.", cv_audit_wait),
				 errhint("Check that the customer_vault audit writer is running (pg_stat_activity) and that max_worker_processes leaves room for it.")));
	}
	return -1;
}

/* give a reserved slot back unused */
static void
cv_audit_release(int slot)
{
	int			e;

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	if (cv_audit->rec[slot].state == CV_SLOT_RESERVED)
	{
		cv_audit->rec[slot].state = CV_SLOT_FREE;
		cv_audit->used--;
		e = cv_audit_db_entry(MyDatabaseId);
		if (e >= 0)
		{
			cv_audit->workers[e].reserved--;
			cv_audit_maybe_free_entry(&cv_audit->workers[e]);
		}
	}
	LWLockRelease(cv_audit->lock);
	ConditionVariableBroadcast(&cv_audit->freed);
}

/* queue one record into the slot reserved for it (never waits, never fails) */
static void
cv_audit_enqueue(const CvAuditPending *p, int slot)
{
	TimestampTz now = GetCurrentTimestamp();
	CvAuditRecord *r = &cv_audit->rec[slot];
	bool		stalled = false;
	int			e;

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	Assert(r->state == CV_SLOT_RESERVED && r->dbid == MyDatabaseId);
	e = cv_audit_db_entry(MyDatabaseId);
	cv_audit_fill(r, p);
	r->seq = cv_audit->next_seq++;
	r->state = CV_SLOT_FILLED;
	if (e >= 0)
	{
		CvAuditWorkerSlot *s = &cv_audit->workers[e];

		s->reserved--;
		if (s->queued <= 0)
			s->progress_at = now;
		else
			stalled = cv_audit_check_stall(s, now);
		s->queued++;
	}
	LWLockRelease(cv_audit->lock);
	if (stalled)
		cv_audit_log_stall();
	/* a writer for this database: launched, or woken up */
	cv_audit_ensure_worker();
}

/*
 * Write out this backend's counts: queue one record per key, or log them
 * (standby, no preload).  can_error false during abort: a record that does
 * not fit (after the wait, unless the transaction's wait already timed out)
 * is logged rather than raising an error.
 */
static void
cv_audit_flush(bool can_wait, bool can_error)
{
	while (cv_npending > 0)
	{
		CvAuditPending *p = &cv_pending[0];
		CvAuditRecord r;

		if (p->values > 0)
		{
			if (cv_audit == NULL || RecoveryInProgress())
			{
				memset(&r, 0, sizeof(r));
				cv_audit_fill(&r, p);
				cv_audit_log_line(&r, cv_audit == NULL ? "not_preloaded" : "standby");
				if (cv_audit == NULL && can_error && !cv_warned_no_queue)
				{
					cv_warned_no_queue = true;
					ereport(WARNING,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("decryptions of this session are audited in the server log only, not in customer_vault.access_log"),
							 errdetail("customer_vault is not in shared_preload_libraries."),
							 errhint("Add customer_vault to shared_preload_libraries and restart the server.")));
				}
			}
			else
			{
				/* no reservation (none was possible when the key was first used): one now */
				if (p->slot < 0)
					p->slot = cv_audit_reserve(can_wait, false);
				if (p->slot >= 0)
				{
					cv_audit_enqueue(p, p->slot);
					p->slot = -1;
				}
				else
				{
					if (can_error)
					{
						/* the record stays pending: written to the log on abort */
						cv_last_pending = 0;
						cv_queue_failed = true;
						ereport(ERROR,
								(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								 errmsg("the decrypt audit queue is full"),
								 errdetail("No room in the queue of access_log records for %d ms; the statement is refused rather than left unrecorded.", cv_audit_wait),
								 errhint("Check that the customer_vault audit writer is running (pg_stat_activity) and that max_worker_processes leaves room for it.")));
					}
					memset(&r, 0, sizeof(r));
					cv_audit_fill(&r, p);
					cv_audit_log_line(&r, "queue_full");
				}
			}
		}
		if (p->slot >= 0 && cv_audit != NULL)
		{
			/* nothing to record, or recorded in the log: the reservation goes back */
			cv_audit_release(p->slot);
			p->slot = -1;
		}
		/* done with the first entry (keys in the order they were first used) */
		cv_npending--;
		if (cv_npending > 0)
			memmove(&cv_pending[0], &cv_pending[1], sizeof(CvAuditPending) * cv_npending);
	}
	cv_last_pending = 0;
	cv_pending_value_mode = false;
}

/*
 * Backend exit: reservations still held (normally none: the abort of the
 * last transaction queued them) are not leaked against the database's
 * share: a record with values is queued, an empty one released.
 */
static void
cv_audit_backend_exit(int code, Datum arg)
{
	int			i;

	if (cv_audit == NULL || cv_pending == NULL)
		return;
	for (i = 0; i < cv_npending; i++)
	{
		CvAuditPending *p = &cv_pending[i];

		if (p->slot < 0)
			continue;
		if (p->values > 0)
			cv_audit_enqueue(p, p->slot);
		else
			cv_audit_release(p->slot);
		p->slot = -1;
	}
	cv_npending = 0;
}

/* ExecutorRun: counts nesting; a top-level run flushes at its end */
static void
#if PG_VERSION_NUM >= 180000
cv_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count)
#else
cv_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
#endif
{
	cv_exec_nesting++;
	PG_TRY();
	{
#if PG_VERSION_NUM >= 180000
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count);
		else
			standard_ExecutorRun(queryDesc, direction, count);
#else
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
#endif
	}
	PG_FINALLY();
	{
		cv_exec_nesting--;
	}
	PG_END_TRY();
	if (cv_exec_nesting == 0 && cv_npending > 0)
		cv_audit_flush(true, true);
}

/* ExecutorFinish (AFTER triggers): counts nesting, flushes at top level */
static void
cv_ExecutorFinish(QueryDesc *queryDesc)
{
	cv_exec_nesting++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		cv_exec_nesting--;
	}
	PG_END_TRY();
	if (cv_exec_nesting == 0 && cv_npending > 0)
		cv_audit_flush(true, true);
}

/* ExecutorEnd: a top-level statement's end flushes */
static void
cv_ExecutorEnd(QueryDesc *queryDesc)
{
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	if (cv_exec_nesting == 0 && cv_npending > 0)
		cv_audit_flush(true, true);
}

/* transaction end: what was counted outside an executor run, and everything on abort */
static void
cv_audit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (cv_npending > 0)
				cv_audit_flush(true, true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* a ROLLBACK (also in a procedure) waits for room like a commit; after a timeout, no second wait */
			cv_exec_nesting = 0;
			if (cv_npending > 0)
				cv_audit_flush(!cv_queue_failed, false);
			cv_queue_failed = false;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			cv_queue_failed = false;
			break;
		default:
			break;
	}
}

/* install the executor hooks and the transaction callback (every process) */
void
AuditInit(void)
{
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = cv_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = cv_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = cv_ExecutorEnd;
	RegisterXactCallback(cv_audit_xact_callback, NULL);
	/* query ids for access_log even without pg_stat_statements */
	if (process_shared_preload_libraries_in_progress)
		EnableQueryId();
}

/* ---- the writer ---- */

#define CV_W_OK				0	/* written */
#define CV_W_FAILED			1	/* an error: may succeed later */
#define CV_W_NO_EXTENSION	2	/* customer_vault is not installed in the database */
#define CV_W_NO_ACCESS_LOG	3	/* its version predates access_log */

#define CV_AUDIT_RETRY_MIN_MS	100 /* first retry after a failed write */
#define CV_AUDIT_RETRY_MAX_MS	5000	/* retries back off up to this */
#define CV_AUDIT_REAP_MS		5000	/* look for dropped databases' records */

static int	cv_worker_slot = -1;
static SPIPlanPtr cv_append_plan = NULL;
static bool cv_worker_connected = false;

/*
 * A writer leaving: records it took go back to the queue; when records of
 * its database are left and it did not leave in order (an error, a failed
 * connection), the database is marked failing.
 */
static void
cv_audit_worker_exit(int code, Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	int			i;

	if (cv_audit == NULL || cv_worker_slot < 0)
		return;
	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	for (i = 0; i < CV_AUDIT_SLOTS; i++)
	{
		CvAuditRecord *r = &cv_audit->rec[i];

		if (r->dbid == dbid && r->state == CV_SLOT_TAKEN)
			r->state = CV_SLOT_FILLED;
	}
	if (cv_audit->workers[cv_worker_slot].dbid == dbid &&
		cv_audit->workers[cv_worker_slot].pid == MyProcPid)
	{
		CvAuditWorkerSlot *s = &cv_audit->workers[cv_worker_slot];

		s->pid = 0;
		s->latch = NULL;
		if (s->queued > 0 && (code != 0 || !cv_worker_connected))
			cv_audit_set_failing(s, true);
		cv_audit_maybe_free_entry(s);
	}
	LWLockRelease(cv_audit->lock);
}

/* order of two slot indexes by their records' queue position */
static int
cv_audit_seq_cmp(const void *a, const void *b)
{
	uint64		sa = cv_audit->rec[*(const int *) a].seq;
	uint64		sb = cv_audit->rec[*(const int *) b].seq;

	return sa < sb ? -1 : (sa > sb ? 1 : 0);
}

/* take up to CV_AUDIT_BATCH records of this database in queue order; their slot indexes */
static int
cv_audit_take(int *idx)
{
	static int	cand[CV_AUDIT_SLOTS];
	int			n = 0;
	int			i;

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	for (i = 0; i < CV_AUDIT_SLOTS; i++)
		if (cv_audit->rec[i].state == CV_SLOT_FILLED && cv_audit->rec[i].dbid == MyDatabaseId)
			cand[n++] = i;
	if (n > 1)
		qsort(cand, n, sizeof(int), cv_audit_seq_cmp);
	n = Min(n, CV_AUDIT_BATCH);
	for (i = 0; i < n; i++)
	{
		cv_audit->rec[cand[i]].state = CV_SLOT_TAKEN;
		idx[i] = cand[i];
	}
	LWLockRelease(cv_audit->lock);
	return n;
}

/*
 * Settle taken records: those done (written, or given up after a log line)
 * are freed, the others go back to the queue.  The database is failing
 * exactly when some are left; waiting backends are woken.
 */
static void
cv_audit_settle(int *idx, int n, const bool *done)
{
	CvAuditWorkerSlot *s = &cv_audit->workers[cv_worker_slot];
	int			left = 0;
	int			i;

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		if (done[i])
		{
			cv_audit->rec[idx[i]].state = CV_SLOT_FREE;
			cv_audit->used--;
			s->queued--;
			s->progress_at = GetCurrentTimestamp();
		}
		else
		{
			cv_audit->rec[idx[i]].state = CV_SLOT_FILLED;
			left++;
		}
	}
	cv_audit_set_failing(s, left > 0);
	LWLockRelease(cv_audit->lock);
	ConditionVariableBroadcast(&cv_audit->freed);
}

/* a record's subjects as a text[] datum (value mode), or NULL; reduced: none (all counted as more) */
static Datum
cv_audit_subject_array(const CvAuditRecord *r, bool reduced, bool *isnull, Datum *counts, bool *cnull)
{
	Datum		elems[CV_AUDIT_MAX_SUBJECTS];
	Datum		cnts[CV_AUDIT_MAX_SUBJECTS];
	int			i;
	int			n = reduced ? 0 : r->nsubjects;
	int			off = 0;

	*isnull = *cnull = !r->value_mode;
	if (!r->value_mode)
		return (Datum) 0;
	for (i = 0; i < n; i++)
	{
		elems[i] = PointerGetDatum(cstring_to_text_with_len(r->subj + off, r->subj_len[i]));
		cnts[i] = Int32GetDatum(r->subj_count[i]);
		off += r->subj_len[i];
	}
	*counts = PointerGetDatum(construct_array(cnts, n, INT4OID, 4, true, TYPALIGN_INT));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Write records to access_log in one transaction: CV_W_OK, or CV_W_FAILED
 * (nothing written; the error went to the server log), or CV_W_NO_* when
 * there is no access_log to write to.  reduced: the fallback form of a
 * record whose full form failed on its own: no purpose, application, client
 * or subjects (value mode: all its values counted in more_values).
 */
static int
cv_audit_write(int *idx, int n, bool reduced)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile int rc = CV_W_OK;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		int			i;
		Oid			nsp;

		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "customer_vault: writing access_log");
		nsp = get_namespace_oid("customer_vault", true);
		if (!OidIsValid(get_extension_oid("customer_vault", true)))
			rc = CV_W_NO_EXTENSION;
		else if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("access_log_entries", nsp)))
			rc = CV_W_NO_ACCESS_LOG;
		for (i = 0; i < n && rc == CV_W_OK; i++)
		{
			CvAuditRecord *r = &cv_audit->rec[idx[i]];
			Oid			types[14] = {TIMESTAMPTZOID, OIDOID, OIDOID, INT4OID, INT8OID, INT8OID,
			TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTARRAYOID, INT4ARRAYOID, INT8OID, BOOLOID};
			Datum		vals[14];
			char		nulls[14];
			bool		snull,
						cnull;
			int			ret;

			memset(nulls, ' ', sizeof(nulls));
			vals[0] = TimestampTzGetDatum(r->at);
			vals[1] = ObjectIdGetDatum(r->user_id);
			vals[2] = ObjectIdGetDatum(r->role_id);
			vals[3] = Int32GetDatum((int32) r->key_id);
			vals[4] = Int64GetDatum(r->values);
			vals[5] = Int64GetDatum(r->query_id);
			vals[6] = CStringGetTextDatum(r->purpose);
			vals[7] = CStringGetTextDatum(r->app);
			vals[8] = CStringGetTextDatum(r->client);
			if (r->purpose[0] == '\0' || reduced)
				nulls[6] = 'n';
			if (reduced)
				nulls[7] = 'n';
			if (r->client[0] == '\0' || reduced)
				nulls[8] = 'n';
			vals[9] = Int32GetDatum(r->pid);
			vals[10] = cv_audit_subject_array(r, reduced, &snull, &vals[11], &cnull);
			if (snull)
				nulls[10] = nulls[11] = 'n';
			vals[12] = Int64GetDatum(reduced && r->value_mode ? r->values : r->more);
			vals[13] = BoolGetDatum(r->value_mode);
			/* one plan for the worker's life */
			if (cv_append_plan == NULL)
			{
				SPIPlanPtr	plan = SPI_prepare("SELECT customer_vault._access_log_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
											   14, types);

				if (plan == NULL)
					elog(ERROR, "could not prepare the access_log append: %s", SPI_result_code_string(SPI_result));
				if (SPI_keepplan(plan) != 0)
					elog(ERROR, "could not keep the access_log append plan");
				cv_append_plan = plan;
			}
			ret = SPI_execute_plan(cv_append_plan, vals, nulls, false, 0);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "access_log append failed: %d", ret);
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		rc = CV_W_FAILED;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(oldcxt);
	return rc;
}

/*
 * Write taken records: all in one transaction, else record by record (a
 * record whose full form fails on its own is written in its reduced form,
 * and its full line goes to the server log).  done[i] tells which are
 * written or given up (no access_log in the database: logged); a record
 * whose reduced form fails too is kept with all after it, to be retried.
 */
static void
cv_audit_write_all(int *idx, int n, bool *done)
{
	int			rc = cv_audit_write(idx, n, false);
	int			i;

	for (i = 0; i < n; i++)
		done[i] = (rc != CV_W_FAILED);
	if (rc == CV_W_OK)
		return;
	if (rc != CV_W_FAILED)
	{
		for (i = 0; i < n; i++)
			cv_audit_log_line(&cv_audit->rec[idx[i]],
							  rc == CV_W_NO_EXTENSION ? "no_extension" : "no_access_log");
		return;
	}
	for (i = 0; i < n; i++)
	{
		rc = cv_audit_write(&idx[i], 1, false);
		if (rc == CV_W_FAILED)
		{
			rc = cv_audit_write(&idx[i], 1, true);
			if (rc == CV_W_OK)
				cv_audit_log_line(&cv_audit->rec[idx[i]], "write_reduced");
		}
		if (rc == CV_W_FAILED)
			break;
		if (rc != CV_W_OK)
			cv_audit_log_line(&cv_audit->rec[idx[i]],
							  rc == CV_W_NO_EXTENSION ? "no_extension" : "no_access_log");
		done[i] = true;
	}
}

/*
 * Records of databases that no longer exist (dropped while their records
 * waited for a writer that could not connect) go to the server log.
 */
static void
cv_audit_reap_dropped(void)
{
	Oid			cand[CV_AUDIT_MAX_DBS];
	bool		gone[CV_AUDIT_MAX_DBS];
	int			nc = 0;
	int			i,
				j;

	LWLockAcquire(cv_audit->lock, LW_SHARED);
	for (i = 0; i < CV_AUDIT_MAX_DBS; i++)
	{
		CvAuditWorkerSlot *s = &cv_audit->workers[i];

		if (s->dbid != InvalidOid && s->dbid != MyDatabaseId && s->pid == 0 && s->queued > 0)
			cand[nc++] = s->dbid;
	}
	LWLockRelease(cv_audit->lock);
	if (nc == 0)
		return;
	StartTransactionCommand();
	for (i = 0; i < nc; i++)
		gone[i] = !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(cand[i]));
	CommitTransactionCommand();

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	for (j = 0; j < nc; j++)
	{
		int			e = cv_audit_db_entry(cand[j]);

		if (!gone[j] || e < 0 || cv_audit->workers[e].pid != 0)
			continue;
		for (i = 0; i < CV_AUDIT_SLOTS; i++)
		{
			CvAuditRecord *r = &cv_audit->rec[i];

			if (r->dbid != cand[j] || r->state != CV_SLOT_FILLED)
				continue;
			cv_audit_log_line(r, "no_database");
			r->state = CV_SLOT_FREE;
			cv_audit->used--;
			cv_audit->workers[e].queued--;
		}
		cv_audit->workers[e].launching = false;
		cv_audit_set_failing(&cv_audit->workers[e], false);
		cv_audit_maybe_free_entry(&cv_audit->workers[e]);
	}
	LWLockRelease(cv_audit->lock);
	ConditionVariableBroadcast(&cv_audit->freed);
}

/*
 * The writer's own settings, over whatever the database's and roles'
 * settings (ALTER DATABASE / ALTER ROLE ... SET, applied at connection)
 * made of them: nothing its owner or another role sets may stop or alter
 * its write.  Then it must be the bootstrap superuser, acting as itself.
 */
static void
cv_audit_pin_settings(void)
{
	static const char *const pins[][2] = {
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"idle_session_timeout", "0"},
		{"transaction_timeout", "0"},	/* 17 and later */
		{"search_path", "pg_catalog, pg_temp"},
		{"session_replication_role", "origin"},
		{"exit_on_error", "off"},
		{"standard_conforming_strings", "on"},
		{"transform_null_equals", "off"},
		{"temp_tablespaces", ""},
		{"default_tablespace", ""},
		{"max_parallel_workers_per_gather", "0"},
		{"jit", "off"},
		{"row_security", "on"},
		{"customer_vault.audit_decrypt", "off"},	/* its own reads are not audited */
		{"plpgsql.extra_errors", "none"},
		{"plpgsql.extra_warnings", "none"},
		{"plpgsql.variable_conflict", "error"},
	};
	int			i;

	StartTransactionCommand();
	/* first who it is: the session user the database's settings may have changed, then no role */
	if (GetSessionUserId() != BOOTSTRAP_SUPERUSERID)
		SetConfigOption("session_authorization", GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false),
						PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("role", "none", PGC_SUSET, PGC_S_OVERRIDE);
	for (i = 0; i < lengthof(pins); i++)
	{
		/* a core setting this major lacks is skipped; extensions' ones are set as placeholders */
		if (strchr(pins[i][0], '.') == NULL && GetConfigOption(pins[i][0], true, false) == NULL)
			continue;
		SetConfigOption(pins[i][0], pins[i][1], PGC_SUSET, PGC_S_OVERRIDE);
	}
	if (GetSessionUserId() != BOOTSTRAP_SUPERUSERID || GetUserId() != BOOTSTRAP_SUPERUSERID ||
		!superuser())
		ereport(FATAL,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the customer_vault audit writer does not run as the bootstrap superuser")));
	CommitTransactionCommand();
}

/* the audit writer of one database (dynamic background worker) */
void
cv_audit_worker_main(Datum arg)
{
	int			slot = DatumGetInt32(arg);
	Oid			dbid;
	TimestampTz last_work = GetCurrentTimestamp();
	TimestampTz retry_at = 0;
	TimestampTz reaped_at = 0;
	int			backoff = CV_AUDIT_RETRY_MIN_MS;
	int			idx[CV_AUDIT_BATCH];
	bool		done[CV_AUDIT_BATCH];
	uint32		flags = BGWORKER_BYPASS_ALLOWCONN;
	bool		woken = false;	/* the last wait ended by the latch (a backend's record) */

	memcpy(&dbid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	if (cv_audit == NULL)
		proc_exit(0);

	LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
	if (slot < 0 || slot >= CV_AUDIT_MAX_DBS || cv_audit->workers[slot].dbid != dbid ||
		cv_audit->workers[slot].pid != 0 || !cv_audit->workers[slot].launching)
	{
		/* the slot was given up (a launch taken for failed) or taken by another writer */
		LWLockRelease(cv_audit->lock);
		proc_exit(0);
	}
	cv_audit->workers[slot].pid = MyProcPid;
	cv_audit->workers[slot].launching = false;
	cv_audit->workers[slot].latch = MyLatch;
	LWLockRelease(cv_audit->lock);
	cv_worker_slot = slot;
	before_shmem_exit(cv_audit_worker_exit, ObjectIdGetDatum(dbid));

	/* also into a database that refuses connections (ALLOW_CONNECTIONS false: its owner may set it) */
#ifdef BGWORKER_BYPASS_ROLELOGINCHECK
	flags |= BGWORKER_BYPASS_ROLELOGINCHECK;
#endif
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, flags);
	cv_worker_connected = true;
	cv_audit_pin_settings();

	for (;;)
	{
		int			n;
		long		timeout = 500;
		TimestampTz now;

		/*
		 * Woken up by a backend's record after a wait: the records queued in
		 * the next CV_AUDIT_GATHER_MS join it, and one transaction writes them
		 * all.  Written one per transaction, a record cost about three times
		 * the writer's CPU of a record in a batch, and the writer fell behind
		 * a single client decrypting one row per statement (which then waited
		 * for room in its database's share).  Nobody waits for this: the
		 * records are reserved and queued already.  A writer that is behind
		 * (a batch's worth queued, or records found right after a write)
		 * does not wait.  The latch is not in the wait: backends setting it
		 * meanwhile make no system call; it is reset after.
		 */
		if (woken && !ShutdownRequestPending && cv_audit->workers[slot].queued > 0 &&
			cv_audit->workers[slot].queued < CV_AUDIT_BATCH)
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, CV_AUDIT_GATHER_MS,
							 PG_WAIT_EXTENSION);
		woken = false;
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		now = GetCurrentTimestamp();
		if (pg_atomic_read_u32(&cv_audit->nfailing) > 0 &&
			TimestampDifferenceExceeds(reaped_at, now, CV_AUDIT_REAP_MS))
		{
			cv_audit_reap_dropped();
			reaped_at = now;
		}
		if (ShutdownRequestPending && cv_audit->workers[slot].failing)
		{
			/* told to stop while records cannot be written: the server log keeps them */
			n = cv_audit_take(idx);
			while (n > 0)
			{
				int			i;

				for (i = 0; i < n; i++)
				{
					cv_audit_log_line(&cv_audit->rec[idx[i]], "writer_stopped");
					done[i] = true;
				}
				cv_audit_settle(idx, n, done);
				n = cv_audit_take(idx);
			}
			break;
		}
		if (retry_at == 0 || now >= retry_at)
		{
			n = cv_audit_take(idx);
			if (n > 0)
			{
				int			i;
				bool		all = true;

				cv_audit_write_all(idx, n, done);
				for (i = 0; i < n; i++)
					all = all && done[i];
				if (!all && !cv_audit->workers[slot].failing)
					ereport(LOG,
							(errmsg("customer_vault audit: records could not be written to access_log; decryption in this database is refused until they are"),
							 errdetail("They stay queued and are retried, at most every %d ms.", CV_AUDIT_RETRY_MAX_MS)));
				cv_audit_settle(idx, n, done);
				if (all)
				{
					retry_at = 0;
					backoff = CV_AUDIT_RETRY_MIN_MS;
				}
				else
				{
					retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff);
					backoff = Min(backoff * 2, CV_AUDIT_RETRY_MAX_MS);
				}
				last_work = GetCurrentTimestamp();
				continue;
			}
		}
		else
			timeout = Max(1, Min(timeout, (long) ((retry_at - now) / 1000)));
		if (ShutdownRequestPending)
			break;
		if (retry_at == 0 && TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), CV_AUDIT_IDLE_MS))
		{
			bool		left = false;
			int			i;

			/* leave only with nothing queued for this database (checked under the lock) */
			LWLockAcquire(cv_audit->lock, LW_EXCLUSIVE);
			for (i = 0; i < CV_AUDIT_SLOTS && !left; i++)
				left = cv_audit->rec[i].state == CV_SLOT_FILLED && cv_audit->rec[i].dbid == dbid;
			if (!left)
			{
				cv_audit->workers[slot].pid = 0;
				cv_audit->workers[slot].latch = NULL;
				cv_audit_maybe_free_entry(&cv_audit->workers[slot]);
				cv_worker_slot = -1;
			}
			LWLockRelease(cv_audit->lock);
			if (!left)
				break;
		}
		woken = (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							timeout, PG_WAIT_EXTENSION) & WL_LATCH_SET) != 0;
	}
	proc_exit(0);
}
