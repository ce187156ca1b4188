/*-------------------------------------------------------------------------
 * keys.c
 *		The key hierarchy: root key loading (file or command), the data-key
 *		ring stored wrapped in customer_vault.data_keys, wrap/unwrap, the
 *		per-backend cache of unwrapped keys, and wiping.
 *
 * Raw key bytes (the root keys, a data key in transit, a derived subkey,
 * the text a root key is read from) live only in one page per backend that
 * is mmap'd outside every memory context, mlock'd, excluded from core dumps
 * (MADV_DONTDUMP) and from forked children (MADV_DONTFORK), and wiped when
 * released.  The root key is never written to a table, a setting or a
 * message; its AES key schedule exists only for the duration of one wrap
 * or unwrap.  Data keys are stored only wrapped under it (AES-256-GCM,
 * associated data binding the key id), together with the root key's
 * fingerprint so that a wrong root key gives a clear error.
 *
 * Unwrapped data keys are cached per backend as OpenSSL key schedules
 * (allocated by OpenSSL on its heap, cleansed by OpenSSL when freed).  A key
 * reference (CvKey *) stays valid, unchanged, for the whole statement that
 * obtained it: invalidations (a statement trigger on data_keys sends one on
 * every UPDATE, DELETE or TRUNCATE) and the size limit (CV_KEY_CACHE_MAX)
 * are applied only at the next statement or transaction boundary, when the
 * whole cache generation is dropped: its memory context is deleted and
 * reset callbacks free (and cleanse) the OpenSSL objects.  So a rotation or
 * a shred committed in one session is seen by the next statement of every
 * other session, and no caller ever holds a dangling key pointer.  The
 * session's own shred and rotation take effect at once (the cached entry is
 * marked destroyed, the name's active version forgotten).
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define CV_KEY_CACHE_MAX	4096
#define CV_FP_LEN			16
#define CV_WRAPPED_LEN		(CV_NONCE_LEN + CV_KEY_LEN + CV_TAG_LEN)

/* columns of customer_vault.data_keys, in table order */
#define Anum_dk_id				1
#define Anum_dk_name			2
#define Anum_dk_version			3
#define Anum_dk_subject			4
#define Anum_dk_state			5
#define Anum_dk_wrapped			6
#define Anum_dk_root_fp			7
#define Anum_dk_pad_to			12	/* added in 0.2.0 */

typedef struct CvRoot
{
	bool		loaded;
	uint8	   *key;			/* CV_KEY_LEN bytes in the locked page */
	uint8		fp[CV_FP_LEN];
} CvRoot;

/*
 * The locked page: every raw copy of root and data-key material.  Made on
 * first use in each backend (never in the postmaster, whose children would
 * inherit it).
 */
typedef struct CvSecrets
{
	uint8		root[CV_KEY_LEN];
	uint8		prev_root[CV_KEY_LEN];
	uint8		scratch[CV_KEY_LEN];	/* a key being read, made or unwrapped */
	uint8		sub[CV_KEY_LEN];	/* a subkey being derived */
	char		text[160];		/* a root key's hex text being parsed */
	char		sink[256];		/* excess output of the key command */
} CvSecrets;

/* OpenSSL objects of one cached key, freed by a memory-context reset callback */
typedef struct CvKeyHolder
{
	MemoryContextCallback cb;
	CvAead	   *aead;
	CvMac	   *bidx;
	CvMac	   *mask;
} CvKeyHolder;

typedef struct CvNameEntry
{
	char		name[NAMEDATALEN];	/* hash key */
	uint32		active_id;
	uint32		first_id;
} CvNameEntry;

typedef struct CvSubjectEntry
{
	char		subject[CV_SUBJECT_MAX + 1];	/* hash key */
	uint32		key_id;
} CvSubjectEntry;

static CvRoot cv_root;
static CvRoot cv_prev_root;
static CvSecrets *cv_secrets = NULL;
static size_t cv_secrets_len = 0;

/* a flush is pending (invalidation, root key setting): applied at the next boundary */
static bool cv_keys_stale = true;

/* the cache generation: hash tables and key holders; deleted by a flush */
static MemoryContext cv_key_cxt = NULL;
static HTAB *cv_key_cache = NULL;
static HTAB *cv_name_cache = NULL;
static HTAB *cv_subject_cache = NULL;

static Oid	cv_data_keys_relid = InvalidOid;
static Oid	cv_data_keys_pkey = InvalidOid;
static Oid	cv_data_keys_name_idx = InvalidOid;
static Oid	cv_data_keys_subject_idx = InvalidOid;

/*
 * Where data_keys' rows are read on this node: data_keys and its indexes,
 * or, once Citus made it a reference table, its local shard (citus.c).
 * Resolved again after an invalidation of either.
 */
static bool cv_dk_rows_valid = false;
static Oid	cv_dk_rows = InvalidOid;
static Oid	cv_dk_rows_pkey = InvalidOid;
static Oid	cv_dk_rows_name_idx = InvalidOid;
static Oid	cv_dk_rows_subject_idx = InvalidOid;

/* statement epoch: bumped at every statement or transaction boundary and flush */
static uint64 cv_epoch = 1;
static LocalTransactionId cv_epoch_lxid = InvalidLocalTransactionId;
static TimestampTz cv_epoch_ts = 0;

/* the key found last, valid while cv_last_epoch is the current epoch */
static CvKey *cv_last_key = NULL;
static uint64 cv_last_epoch = 0;

/* the id of the subject-hash key, once looked up in this cache generation */
static uint32 cv_hash_key_id = 0;

static uint8 cv_nonce_pool[CV_NONCE_LEN * 340];
static int	cv_nonce_pos = sizeof(cv_nonce_pool);

static const char cv_wrap_label[] = "cv-dk-v1";

/*
 * The name of the dedicated key behind CvSubjectHash.  Its first character
 * is a control character, which every function taking a key name refuses
 * (cv_check_key_name: create_key, rotate_key, encrypt, blind_index,
 * protect_column), so no user key can be it, be mistaken for it, or compute
 * with it; shred_subject destroys subject keys only, never a named one.
 */
static const char cv_subject_hash_key_name[] = "\001subject_hash";

/*
 * Scratch space for a key in transit (a root key being read, a data key
 * being made or unwrapped) is cv_secrets->scratch: wiped on the normal path
 * and, should an error interrupt, at the end of the (sub)transaction.
 */
#define cv_scratch (cv_secrets_get()->scratch)

/*
 * Keys inserted by the current transaction may be in the cache; should it
 * abort, they never existed, so the cache is flushed.
 */
static bool cv_keys_created_in_xact = false;

static void cv_keys_exit_hook(void);

/* ---------- locked memory ---------- */

/*
 * The backend's locked page for raw key bytes, mapped on first use:
 * mlock'd (a failure is reported as a WARNING once: keys may then reach
 * swap), never in a core dump, not inherited by forked children.
 */
static CvSecrets *
cv_secrets_get(void)
{
	void	   *p;
	long		page;

	if (cv_secrets != NULL)
		return cv_secrets;
	cv_keys_exit_hook();
	page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	cv_secrets_len = TYPEALIGN(page, sizeof(CvSecrets));
	p = mmap(NULL, cv_secrets_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not map memory for keys: %m")));
#ifdef MADV_DONTDUMP
	if (madvise(p, cv_secrets_len, MADV_DONTDUMP) != 0)
	{
		int			save_errno = errno;

		munmap(p, cv_secrets_len);
		errno = save_errno;
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not exclude key memory from core dumps: %m")));
	}
#endif
#ifdef MADV_DONTFORK
	(void) madvise(p, cv_secrets_len, MADV_DONTFORK);
#endif
	if (mlock(p, cv_secrets_len) != 0)
		ereport(WARNING,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not lock key memory: %m"),
				 errdetail("Key material of this session may be written to swap."),
				 errhint("Raise the locked-memory limit (RLIMIT_MEMLOCK) of the database server.")));
	cv_secrets = (CvSecrets *) p;
	return cv_secrets;
}

/* wipe the locked page (backend exit) */
static void
cv_secrets_wipe(void)
{
	if (cv_secrets != NULL)
		cv_wipe(cv_secrets, sizeof(CvSecrets));
}

/* ---------- root key ---------- */

/* release a root key, wiping it */
static void
cv_root_release(CvRoot *r)
{
	if (r->key != NULL)
		cv_wipe(r->key, CV_KEY_LEN);
	memset(r, 0, sizeof(CvRoot));
}

/* an AES-256-GCM key schedule of a root key, for one wrap or unwrap; caller frees */
static CvAead *
cv_root_aead(const CvRoot *r)
{
	CvAead	   *a = cv_aead_new(r->key);

	if (a == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not initialize AES-256-GCM")));
	return a;
}

/* value of one hexadecimal digit, -1 if it is none */
static int
cv_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* parse 64 hex characters (trailing white space allowed); false if malformed */
static bool
cv_parse_hex_key(const char *buf, size_t len, uint8 *out)
{
	size_t		i;

	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
					   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len != CV_KEY_LEN * 2)
		return false;
	for (i = 0; i < CV_KEY_LEN; i++)
	{
		int			hi = cv_hex_value(buf[2 * i]);
		int			lo = cv_hex_value(buf[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8) ((hi << 4) | lo);
	}
	return true;
}

/* read a key file, refusing loose permissions; never reports its content */
static void
cv_read_key_file(const char *path, const char *setting, uint8 *out)
{
	char	   *buf = cv_secrets_get()->text;
	struct stat st;
	int			fd;
	ssize_t		n;
	bool		ok;

	fd = open(path, O_RDONLY | PG_BINARY | O_CLOEXEC, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open root key file \"%s\" named by %s: %m", path, setting)));
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat root key file \"%s\": %m", path)));
	}
	if (!S_ISREG(st.st_mode))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("root key file \"%s\" named by %s is not a regular file", path, setting)));
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || (st.st_mode & S_IXUSR) != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("root key file \"%s\" named by %s has permissions %04o", path, setting,
						(unsigned int) (st.st_mode & 07777)),
				 errdetail("A root key file must have permissions 0600 or 0400."),
				 errhint("Run chmod 600 on the file.")));
	}
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("root key file \"%s\" named by %s must be owned by the database user or root",
						path, setting)));
	}
	n = read(fd, buf, sizeof(cv_secrets->text));
	close(fd);
	ok = n > 0 && cv_parse_hex_key(buf, (size_t) n, out);
	cv_wipe(buf, sizeof(cv_secrets->text));
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read root key file \"%s\": %m", path)));
	if (!ok)
	{
		cv_wipe(out, CV_KEY_LEN);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("root key file \"%s\" named by %s does not hold a 256-bit key", path, setting),
				 errdetail("The file must contain exactly 64 hexadecimal characters."),
				 errhint("Generate one with: (umask 077; openssl rand -hex 32 > <file>)")));
	}
}

/* run the key command and read its standard output; never reports the output */
static void
cv_read_key_command(const char *command, uint8 *out)
{
	char	   *buf = cv_secrets_get()->text;
	char	   *sink = cv_secrets->sink;
	size_t		n = 0;
	bool		overflow = false;
	bool		ok;
	FILE	   *fh;
	int			rc;

	fflush(NULL);
	fh = OpenPipeStream(command, "r");
	if (fh == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not run the command named by customer_vault.root_key_command: %m")));
	n = fread(buf, 1, sizeof(cv_secrets->text), fh);
	while (!feof(fh) && !ferror(fh))
	{
		if (fread(sink, 1, sizeof(cv_secrets->sink), fh) > 0)
			overflow = true;
	}
	cv_wipe(sink, sizeof(cv_secrets->sink));
	rc = ClosePipeStream(fh);
	ok = !overflow && rc == 0 && n > 0 && cv_parse_hex_key(buf, n, out);
	cv_wipe(buf, sizeof(cv_secrets->text));
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("command named by customer_vault.root_key_command failed"),
				 errdetail_internal("%s", wait_result_to_str(rc))));
	if (!ok)
	{
		cv_wipe(out, CV_KEY_LEN);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("command named by customer_vault.root_key_command did not print a 256-bit key"),
				 errdetail("Its output must be exactly 64 hexadecimal characters.")));
	}
}

/* fingerprint of a root key: HMAC under the key of a fixed label, truncated */
static void
cv_root_fingerprint(const uint8 *key, uint8 *fp)
{
	static const char label[] = "customer_vault root key fingerprint v1";
	uint8		mac[CV_MAC_LEN];

	if (!cv_hmac_sha256(key, CV_KEY_LEN, (const uint8 *) label, strlen(label), mac))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not compute HMAC-SHA-256")));
	memcpy(fp, mac, CV_FP_LEN);
	cv_wipe(mac, sizeof(mac));
}

/*
 * The current (previous = false) or previous root key, loaded on first use.
 * The current one raises an error when unset; the previous one is NULL then.
 */
static CvRoot *
cv_root_get(bool previous)
{
	CvRoot	   *r = previous ? &cv_prev_root : &cv_root;
	uint8	   *buf;

	if (r->loaded)
		return r;

	if (previous)
	{
		if (cv_previous_root_key_file == NULL || cv_previous_root_key_file[0] == '\0')
			return NULL;
	}
	else if ((cv_root_key_file == NULL || cv_root_key_file[0] == '\0') &&
			 (cv_root_key_command == NULL || cv_root_key_command[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("customer_vault.root_key_file is not set"),
				 errdetail("No root key is configured, so data keys cannot be wrapped or unwrapped."),
				 errhint("Set customer_vault.root_key_file (or customer_vault.root_key_command) in postgresql.conf and reload the configuration.")));
	else if (cv_root_key_file != NULL && cv_root_key_file[0] != '\0' &&
			 cv_root_key_command != NULL && cv_root_key_command[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customer_vault.root_key_file and customer_vault.root_key_command are both set"),
				 errhint("Set only one of them.")));

	if (previous)
		cv_read_key_file(cv_previous_root_key_file, "customer_vault.previous_root_key_file", cv_scratch);
	else if (cv_root_key_file != NULL && cv_root_key_file[0] != '\0')
		cv_read_key_file(cv_root_key_file, "customer_vault.root_key_file", cv_scratch);
	else
		cv_read_key_command(cv_root_key_command, cv_scratch);
	cv_root_fingerprint(cv_scratch, r->fp);
	buf = previous ? cv_secrets->prev_root : cv_secrets->root;
	memcpy(buf, cv_scratch, CV_KEY_LEN);
	cv_wipe(cv_scratch, CV_KEY_LEN);
	r->key = buf;
	r->loaded = true;
	return r;
}

/* called by the key-source settings' assign hooks: reload before next use */
void
CvRootKeyMarkStale(void)
{
	cv_keys_stale = true;
}

/* ---------- data-key cache ---------- */

/* reset callback of a cache generation: free (and so cleanse) one key's OpenSSL objects */
static void
cv_key_holder_free(void *arg)
{
	CvKeyHolder *h = (CvKeyHolder *) arg;

	cv_aead_free(h->aead);
	h->aead = NULL;
	cv_mac_free(h->bidx);
	h->bidx = NULL;
	cv_mac_free(h->mask);
	h->mask = NULL;
}

/*
 * Drop the cache generation (every cached key, wiped by the reset callbacks);
 * the root keys too when asked.  Only at a statement or transaction boundary
 * (or at exit): key references handed out earlier die here.
 */
static void
cv_cache_flush(bool roots)
{
	if (cv_key_cxt != NULL)
		MemoryContextDelete(cv_key_cxt);
	cv_key_cxt = NULL;
	cv_last_key = NULL;
	cv_hash_key_id = 0;
	cv_key_cache = NULL;
	cv_name_cache = NULL;
	cv_subject_cache = NULL;
	cv_data_keys_relid = InvalidOid;
	cv_data_keys_pkey = InvalidOid;
	cv_data_keys_name_idx = InvalidOid;
	cv_data_keys_subject_idx = InvalidOid;
	cv_dk_rows_valid = false;
	if (roots)
	{
		cv_root_release(&cv_root);
		cv_root_release(&cv_prev_root);
	}
	cv_epoch++;
}

/*
 * The key epoch, which changes at every statement and transaction boundary
 * (a new statement start time or a new local transaction): key references
 * and memos of key references are valid while it stays the same.  A pending
 * flush (an invalidation, a changed root key setting, a cache over its size
 * limit) is applied here, at the first key access of a new statement, when no
 * reference from an earlier statement can still be in use.
 */
uint64
CvKeyEpoch(void)
{
	LocalTransactionId lxid = MyProc != NULL ? CV_PROC_LXID(MyProc) : InvalidLocalTransactionId;
	TimestampTz ts = GetCurrentStatementStartTimestamp();

	if (lxid != cv_epoch_lxid || ts != cv_epoch_ts)
	{
		cv_epoch_lxid = lxid;
		cv_epoch_ts = ts;
		cv_epoch++;
		if (cv_keys_stale)
		{
			cv_cache_flush(true);
			cv_keys_stale = false;
		}
		else if (cv_key_cache != NULL &&
				 (hash_get_num_entries(cv_key_cache) > CV_KEY_CACHE_MAX ||
				  hash_get_num_entries(cv_subject_cache) > CV_KEY_CACHE_MAX))
			cv_cache_flush(false);
	}
	return cv_epoch;
}

/*
 * The extension's one relcache callback (a backend has only 10 slots, and
 * Citus takes five of them): a change to data_keys (or a full reset) flushes
 * the key cache lazily; the erasure plans and grant_consent's catalog cache
 * hear of it too.
 */
static void
cv_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cv_data_keys_relid ||
		(cv_dk_rows_valid && relid == cv_dk_rows))
	{
		cv_keys_stale = true;
		cv_dk_rows_valid = false;
	}
	ForgetRelcacheInval(relid);
	ImportRelcacheInval(relid);
}

/* wipe everything when the backend exits */
static void
cv_keys_atexit(int code, Datum arg)
{
	bool		held = cv_key_cache != NULL || cv_secrets != NULL;

	cv_cache_flush(true);
	cv_secrets_wipe();
	if (held)
		elog(DEBUG1, "customer_vault: key memory of process %d wiped at exit", MyProcPid);
}

/*
 * Register the exit wipe in this process, before it first holds a key.  Not
 * once from _PG_init: with shared_preload_libraries that runs in the
 * postmaster, and every child forgets the postmaster's proc_exit callbacks
 * (on_exit_reset() in InitPostmasterChild), so backends exited with their
 * keys in memory, unwiped (session 27's review).  The process id tells a
 * child from the process that registered.
 */
static void
cv_keys_exit_hook(void)
{
	static int	registered_in = 0;

	if (registered_in != MyProcPid)
	{
		on_proc_exit(cv_keys_atexit, (Datum) 0);
		registered_in = MyProcPid;
	}
}

/* wipe the scratch key when a transaction ends, also on error */
static void
cv_xact_callback(XactEvent event, void *arg)
{
	if (cv_secrets != NULL)
		cv_wipe(cv_secrets->scratch, CV_KEY_LEN);
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (cv_keys_created_in_xact)
			cv_keys_stale = true;
		cv_keys_created_in_xact = false;
		cv_hash_key_id = 0;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
		cv_keys_created_in_xact = false;
}

/* the same when a subtransaction ends */
static void
cv_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (cv_secrets != NULL)
		cv_wipe(cv_secrets->scratch, CV_KEY_LEN);
	if (event == SUBXACT_EVENT_ABORT_SUB && cv_keys_created_in_xact)
	{
		cv_keys_stale = true;
		cv_hash_key_id = 0;		/* it may have been made in the aborted part */
	}
}

/* register the callbacks; called from _PG_init */
void
KeysInit(void)
{
	CacheRegisterRelcacheCallback(cv_relcache_callback, (Datum) 0);
	RegisterXactCallback(cv_xact_callback, NULL);
	RegisterSubXactCallback(cv_subxact_callback, NULL);
	cv_keys_exit_hook();
}

/*
 * Apply a pending flush if this is a new statement, then make sure the hash
 * tables and OIDs exist.  Never drops a key inside a statement.
 */
static void
cv_cache_prepare(void)
{
	HASHCTL		ctl;

	(void) CvKeyEpoch();

	/*
	 * data_keys itself was dropped within this statement (DROP EXTENSION and
	 * CREATE EXTENSION in one DO block, say): nothing cached can be used, not
	 * even within the statement, since a new key table reuses the key ids.
	 * Bumping the epoch invalidates every memo of a key reference.
	 */
	if (cv_keys_stale && OidIsValid(cv_data_keys_relid) &&
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(cv_data_keys_relid)))
		cv_cache_flush(false);
	if (cv_key_cxt == NULL)
		cv_key_cxt = AllocSetContextCreate(TopMemoryContext, "customer_vault keys",
										   ALLOCSET_SMALL_SIZES);
	if (cv_key_cache == NULL)
	{
		cv_keys_exit_hook();
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(CvKey);
		ctl.hcxt = cv_key_cxt;
		cv_key_cache = hash_create("customer_vault data keys", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(CvNameEntry);
		cv_name_cache = hash_create("customer_vault key names", 16, &ctl,
									HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		ctl.keysize = CV_SUBJECT_MAX + 1;
		ctl.entrysize = sizeof(CvSubjectEntry);
		cv_subject_cache = hash_create("customer_vault subject keys", 64, &ctl,
									   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	if (!OidIsValid(cv_data_keys_relid))
	{
		Oid			nsp = get_namespace_oid(CV_SCHEMA, true);

		if (OidIsValid(nsp))
		{
			cv_data_keys_relid = get_relname_relid("data_keys", nsp);
			cv_data_keys_pkey = get_relname_relid("data_keys_pkey", nsp);
			cv_data_keys_name_idx = get_relname_relid("data_keys_name_version_key", nsp);
			cv_data_keys_subject_idx = get_relname_relid("data_keys_subject_live_key", nsp);
		}
		if (!OidIsValid(cv_data_keys_relid) || !OidIsValid(cv_data_keys_pkey) ||
			!OidIsValid(cv_data_keys_name_idx) || !OidIsValid(cv_data_keys_subject_idx))
		{
			cv_data_keys_relid = InvalidOid;
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"customer_vault\" is not installed in this database"),
					 errhint("Run CREATE EXTENSION customer_vault CASCADE.")));
		}
	}
	if (!cv_dk_rows_valid)
	{
		Oid			idx[3];

		idx[0] = cv_data_keys_pkey;
		idx[1] = cv_data_keys_name_idx;
		idx[2] = cv_data_keys_subject_idx;
		cv_dk_rows = CvCitusRowsRelation(cv_data_keys_relid, idx, 3);
		cv_dk_rows_pkey = idx[0];
		cv_dk_rows_name_idx = idx[1];
		cv_dk_rows_subject_idx = idx[2];
		cv_dk_rows_valid = true;
	}
}

/* unwrap a data key with the root key whose fingerprint it records */
static void
cv_unwrap(uint32 id, const bytea *wrapped, const bytea *root_fp, uint8 *out)
{
	CvRoot	   *cur = cv_root_get(false);
	CvRoot	   *use = NULL;
	uint8		aad[sizeof(cv_wrap_label) - 1 + 4];
	const uint8 *w;
	CvAead	   *aead;
	int			rc;

	if (VARSIZE_ANY_EXHDR(root_fp) == CV_FP_LEN &&
		memcmp(VARDATA_ANY(root_fp), cur->fp, CV_FP_LEN) == 0)
		use = cur;
	else
	{
		CvRoot	   *prev = cv_root_get(true);

		if (prev != NULL && VARSIZE_ANY_EXHDR(root_fp) == CV_FP_LEN &&
			memcmp(VARDATA_ANY(root_fp), prev->fp, CV_FP_LEN) == 0)
			use = prev;
	}
	if (use == NULL)
	{
		char		curhex[CV_FP_LEN * 2 + 1];

		hex_encode((const char *) cur->fp, CV_FP_LEN, curhex);
		curhex[CV_FP_LEN * 2] = '\0';
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key %u is wrapped under a different root key", id),
				 errdetail("The configured root key has fingerprint %s.", curhex),
				 errhint("Configure the root key that wrapped it, or name it in customer_vault.previous_root_key_file and run customer_vault.rewrap_keys().")));
	}
	if (VARSIZE_ANY_EXHDR(wrapped) != CV_WRAPPED_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("wrapped data key %u has an invalid length", id)));

	memcpy(aad, cv_wrap_label, sizeof(cv_wrap_label) - 1);
	aad[8] = (uint8) (id >> 24);
	aad[9] = (uint8) (id >> 16);
	aad[10] = (uint8) (id >> 8);
	aad[11] = (uint8) id;
	w = (const uint8 *) VARDATA_ANY(wrapped);
	aead = cv_root_aead(use);
	rc = cv_aead_open(aead, w, aad, sizeof(aad), NULL, 0,
					  w + CV_NONCE_LEN, CV_KEY_LEN, w + CV_NONCE_LEN + CV_KEY_LEN, out);
	cv_aead_free(aead);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("AES-256-GCM decryption failed in the crypto library")));
	if (rc == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("wrapped data key %u failed authentication", id),
				 errdetail("The stored key was altered or moved to another key id.")));
}

/* wrap a data key under the current root key: nonce || ciphertext || tag */
static bytea *
cv_wrap(uint32 id, const uint8 *dk, bytea **root_fp_out)
{
	CvRoot	   *cur = cv_root_get(false);
	bytea	   *res = palloc(VARHDRSZ + CV_WRAPPED_LEN);
	uint8	   *w = (uint8 *) VARDATA(res);
	uint8		aad[sizeof(cv_wrap_label) - 1 + 4];
	CvAead	   *aead;
	bool		ok;

	SET_VARSIZE(res, VARHDRSZ + CV_WRAPPED_LEN);
	memcpy(aad, cv_wrap_label, sizeof(cv_wrap_label) - 1);
	aad[8] = (uint8) (id >> 24);
	aad[9] = (uint8) (id >> 16);
	aad[10] = (uint8) (id >> 8);
	aad[11] = (uint8) id;
	if (!cv_random_bytes(w, CV_NONCE_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not generate random bytes")));
	aead = cv_root_aead(cur);
	ok = cv_aead_seal(aead, w, aad, sizeof(aad), NULL, 0, dk, CV_KEY_LEN,
					  w + CV_NONCE_LEN, w + CV_NONCE_LEN + CV_KEY_LEN);
	cv_aead_free(aead);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("AES-256-GCM encryption failed in the crypto library")));
	if (root_fp_out != NULL)
	{
		bytea	   *fp = palloc(VARHDRSZ + CV_FP_LEN);

		SET_VARSIZE(fp, VARHDRSZ + CV_FP_LEN);
		memcpy(VARDATA(fp), cur->fp, CV_FP_LEN);
		*root_fp_out = fp;
	}
	return res;
}

/*
 * A snapshot for reading the key table: the latest one, so every committed
 * change counts; inside a parallel query (where a new snapshot may not be
 * taken) the query's own, which leader and workers share.
 */
static Snapshot
cv_fresh_snapshot(void)
{
	if (IsInParallelMode() && ActiveSnapshotSet())
		return RegisterSnapshot(GetActiveSnapshot());
	return RegisterSnapshot(GetLatestSnapshot());
}

/*
 * Enter a key into the cache: the key schedule, and for a named key the
 * blind-index MAC under an HKDF subkey.  dk (NULL for a destroyed key) is
 * wiped here.
 */
static CvKey *
cv_cache_insert(const CvKey *meta, uint8 *dk)
{
	CvKey	   *k;
	CvKeyHolder *h;
	bool		ok = true;

	h = MemoryContextAllocZero(cv_key_cxt, sizeof(CvKeyHolder));
	h->cb.func = cv_key_holder_free;
	h->cb.arg = h;
	MemoryContextRegisterResetCallback(cv_key_cxt, &h->cb);
	if (dk != NULL)
	{
		uint8	   *sub = cv_secrets_get()->sub;

		h->aead = cv_aead_new(dk);
		ok = h->aead != NULL;
		if (ok && !meta->is_subject)
		{
			ok = cv_hkdf_sha256(dk, CV_KEY_LEN, "customer_vault blind index v1", sub, CV_KEY_LEN) &&
				(h->bidx = cv_mac_new(sub, CV_KEY_LEN)) != NULL;
			cv_wipe(sub, CV_KEY_LEN);
			/* masking (hash and fake rules): a subkey of its own */
			ok = ok && cv_hkdf_sha256(dk, CV_KEY_LEN, "customer_vault mask v1", sub, CV_KEY_LEN) &&
				(h->mask = cv_mac_new(sub, CV_KEY_LEN)) != NULL;
			cv_wipe(sub, CV_KEY_LEN);
		}
		cv_wipe(dk, CV_KEY_LEN);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
					 errmsg("could not set up data key %u in the crypto library", meta->id)));
	}
	k = hash_search(cv_key_cache, &meta->id, HASH_ENTER, NULL);
	memcpy(k, meta, sizeof(CvKey));
	k->aead = h->aead;
	k->bidx = h->bidx;
	k->mask = h->mask;
	k->destroyed = (dk == NULL);
	return k;
}

/* read one data_keys row by id into a new cache entry; NULL if no such id */
static CvKey *
cv_load_key(uint32 id)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	Snapshot	snap;
	CvKey	   *k = NULL;
	uint8	   *dk = cv_scratch;

	rel = table_open(cv_dk_rows, AccessShareLock);
	snap = cv_fresh_snapshot();
	ScanKeyInit(&skey, Anum_dk_id, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum((int32) id));
	scan = systable_beginscan(rel, cv_dk_rows_pkey, true, snap, 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;
		char	   *state;
		CvKey		tmp;

		memset(&tmp, 0, sizeof(tmp));
		tmp.id = id;
		d = heap_getattr(tup, Anum_dk_name, desc, &isnull);
		if (!isnull)
			strlcpy(tmp.name, TextDatumGetCString(d), NAMEDATALEN);
		d = heap_getattr(tup, Anum_dk_version, desc, &isnull);
		tmp.version = isnull ? 0 : DatumGetInt32(d);
		/* a 0.1.0 key table (before ALTER EXTENSION UPDATE) has no pad_to */
		if (desc->natts >= Anum_dk_pad_to)
		{
			d = heap_getattr(tup, Anum_dk_pad_to, desc, &isnull);
			tmp.pad_to = isnull ? 0 : (uint32) Max(DatumGetInt32(d), 0);
		}
		(void) heap_getattr(tup, Anum_dk_subject, desc, &isnull);
		tmp.is_subject = tmp.name[0] == '\0';
		d = heap_getattr(tup, Anum_dk_state, desc, &isnull);
		state = isnull ? "destroyed" : TextDatumGetCString(d);
		tmp.destroyed = strcmp(state, "destroyed") == 0;
		if (!tmp.destroyed)
		{
			Datum		w = heap_getattr(tup, Anum_dk_wrapped, desc, &isnull);
			Datum		fp;
			bool		fpnull;

			fp = heap_getattr(tup, Anum_dk_root_fp, desc, &fpnull);
			if (isnull || fpnull)
				tmp.destroyed = true;
			else
				cv_unwrap(id, DatumGetByteaPP(w), DatumGetByteaPP(fp), dk);
		}
		k = cv_cache_insert(&tmp, tmp.destroyed ? NULL : dk);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return k;
}

/* the data key with this id (destroyed keys come back with destroyed set) */
CvKey *
CvKeyById(uint32 id)
{
	CvKey	   *k = CvKeyByIdOrNull(id);

	if (k == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key %u does not exist", id),
				 errdetail("The value was encrypted in another database, or its key table was not restored.")));
	return k;
}

/*
 * The data key with this id, NULL when there is none; valid, unchanged,
 * until the end of the statement.
 */
CvKey *
CvKeyByIdOrNull(uint32 id)
{
	uint64		epoch = CvKeyEpoch();
	CvKey	   *k;

	if (cv_last_key != NULL && cv_last_epoch == epoch && cv_last_key->id == id)
		return cv_last_key;
	cv_cache_prepare();
	k = hash_search(cv_key_cache, &id, HASH_FIND, NULL);
	if (k == NULL)
		k = cv_load_key(id);
	if (k != NULL)
	{
		cv_last_key = k;
		cv_last_epoch = epoch;
	}
	return k;
}

/* check a key name given by a user */
static void
cv_check_key_name(const char *name)
{
	const char *p;

	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key name"),
				 errdetail("A key name is 1 to %d bytes long.", NAMEDATALEN - 1)));
	for (p = name; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid key name"),
					 errdetail("A key name cannot contain control characters.")));
}

/* the active and first versions of a named key, cached */
static CvNameEntry *
cv_name_lookup(const char *keyname)
{
	CvNameEntry *e;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	Snapshot	snap;
	uint32		active = 0,
				first = 0;
	int32		first_version = PG_INT32_MAX;
	bool		found;

	char		name[NAMEDATALEN];

	/* copy first: the caller's string may live in the cache we may flush */
	cv_check_key_name(keyname);
	strlcpy(name, keyname, NAMEDATALEN);
	cv_cache_prepare();
	e = hash_search(cv_name_cache, name, HASH_FIND, NULL);
	if (e != NULL)
		return e;

	rel = table_open(cv_dk_rows, AccessShareLock);
	snap = cv_fresh_snapshot();
	ScanKeyInit(&skey, Anum_dk_name, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(name));
	scan = systable_beginscan(rel, cv_dk_rows_name_idx, true, snap, 1, &skey);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		uint32		id = (uint32) DatumGetInt32(heap_getattr(tup, Anum_dk_id, desc, &isnull));
		int32		version = DatumGetInt32(heap_getattr(tup, Anum_dk_version, desc, &isnull));
		Datum		st = heap_getattr(tup, Anum_dk_state, desc, &isnull);
		char	   *state = isnull ? "destroyed" : TextDatumGetCString(st);

		if (strcmp(state, "active") == 0)
			active = id;
		if (strcmp(state, "destroyed") != 0 && version < first_version)
		{
			first_version = version;
			first = id;
		}
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);

	if (active == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key \"%s\" does not exist", name),
				 errhint("Create it with customer_vault.create_key().")));

	e = hash_search(cv_name_cache, name, HASH_ENTER, &found);
	e->active_id = active;
	e->first_id = first;
	return e;
}

/* the active version of a named key, for sealing */
CvKey *
CvActiveKeyByName(const char *name)
{
	uint32		id = cv_name_lookup(name)->active_id;

	return CvKeyById(id);
}

/*
 * The key whose derived subkey computes blind indexes for a name: its
 * first version, so that indexes stay comparable across rotations.
 */
CvKey *
CvBlindIndexKeyByName(const char *name)
{
	uint32		id = cv_name_lookup(name)->first_id;

	return CvKeyById(id);
}

/* 12 fresh random bytes, drawn from a pool refilled from OpenSSL's DRBG */
void
CvRandomNonce(uint8 *nonce)
{
	if (cv_nonce_pos + CV_NONCE_LEN > (int) sizeof(cv_nonce_pool))
	{
		if (!cv_random_bytes(cv_nonce_pool, sizeof(cv_nonce_pool)))
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
					 errmsg("could not generate random bytes")));
		cv_nonce_pos = 0;
	}
	memcpy(nonce, cv_nonce_pool + cv_nonce_pos, CV_NONCE_LEN);
	memset(cv_nonce_pool + cv_nonce_pos, 0, CV_NONCE_LEN);
	cv_nonce_pos += CV_NONCE_LEN;
}

/* ---------- writing the key table (as its owner, through SPI) ---------- */

typedef struct CvOwnerSwitch
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
} CvOwnerSwitch;

/*
 * act as the owner of data_keys (the extension's owner) for SPI writes, with
 * search_path pinned to pg_catalog, pg_temp and the output settings pinned (on Citus the key table is a reference table:
 * its times go to the workers as text, CvPinOutputSettings)
 */
static void
cv_become_owner(CvOwnerSwitch *sw)
{
	HeapTuple	tup;
	Oid			owner;

	cv_cache_prepare();
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(cv_data_keys_relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", cv_data_keys_relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec);
	SetUserIdAndSecContext(owner, sw->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sw->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	CvPinOutputSettings();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* back to the calling user and its settings */
static void
cv_restore_user(CvOwnerSwitch *sw)
{
	SPI_finish();
	AtEOXact_GUC(false, sw->nestlevel);
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec);
}

/* a plan prepared once per backend and kept (the plan cache revalidates it) */
SPIPlanPtr
CvSavedPlan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = p;
	}
	return *slot;
}

/* the next key id from the table's sequence */
static uint32
cv_next_key_id(void)
{
	bool		isnull;
	Datum		d;

	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(CvSavedPlan(&plan, "SELECT pg_catalog.nextval('customer_vault.data_keys_id_seq'::pg_catalog.regclass)::pg_catalog.int4",
									   0, NULL),
						 NULL, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not draw a key id");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return (uint32) DatumGetInt32(d);
}

/*
 * Insert a new random data key; name/version for a named key, subject for a
 * subject key.  Returns the new id, or 0 when the subject already had one
 * (a concurrent insert won).
 */
static uint32
cv_insert_key(const char *name, int32 version, const char *subject, const char *comment,
			  int32 pad_to, bool keep_dk)
{
	static const char fp_label[] = "customer_vault data key fingerprint v1";
	uint8	   *dk = cv_scratch;
	uint8		mac[CV_MAC_LEN];
	bytea	   *wrapped;
	bytea	   *root_fp;
	bytea	   *fp;
	uint32		id = cv_next_key_id();
	Oid			types[7] = {INT4OID, TEXTOID, INT4OID, TEXTOID, BYTEAOID, BYTEAOID, BYTEAOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	if (!cv_random_bytes(dk, CV_KEY_LEN) ||
		!cv_hmac_sha256(dk, CV_KEY_LEN, (const uint8 *) fp_label, strlen(fp_label), mac))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not generate a data key")));
	wrapped = cv_wrap(id, dk, &root_fp);
	if (!keep_dk)
		cv_wipe(dk, CV_KEY_LEN);

	fp = palloc(VARHDRSZ + 8);
	SET_VARSIZE(fp, VARHDRSZ + 8);
	memcpy(VARDATA(fp), mac, 8);
	cv_wipe(mac, sizeof(mac));

	values[0] = Int32GetDatum((int32) id);
	if (name)
		values[1] = CStringGetTextDatum(name);
	else
		nulls[1] = 'n';
	values[2] = Int32GetDatum(version);
	if (subject)
		values[3] = CStringGetTextDatum(subject);
	else
		nulls[3] = 'n';
	values[4] = PointerGetDatum(wrapped);
	values[5] = PointerGetDatum(root_fp);
	values[6] = PointerGetDatum(fp);

	if (name != NULL && strcmp(name, cv_subject_hash_key_name) == 0)
	{
		/* the subject-hash key: a concurrent creator may win, keep its key */
		rc = SPI_execute_with_args("INSERT INTO customer_vault.data_keys"
								   " (id, name, version, subject, state, wrapped, root_fingerprint, fingerprint, comment)"
								   " VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8)"
								   " ON CONFLICT DO NOTHING",
								   8, (Oid[]) {INT4OID, TEXTOID, INT4OID, TEXTOID, BYTEAOID, BYTEAOID, BYTEAOID, TEXTOID},
								   (Datum[]) {values[0], values[1], values[2], values[3], values[4], values[5], values[6],
									   CStringGetTextDatum(comment)},
								   "   n    ", false, 0);
	}
	else if (subject != NULL)
	{
		static SPIPlanPtr plan = NULL;

		rc = SPI_execute_plan(CvSavedPlan(&plan,
											"INSERT INTO customer_vault.data_keys"
											" (id, name, version, subject, state, wrapped, root_fingerprint, fingerprint)"
											" VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)"
											" ON CONFLICT (subject) WHERE state OPERATOR(pg_catalog.<>) 'destroyed' DO NOTHING",
											7, types),
							  values, nulls, false, 0);
	}
	else
	{
		Oid			types8[9];
		Datum		values8[9];
		char		nulls8[9];

		memcpy(types8, types, sizeof(types));
		memcpy(values8, values, sizeof(values));
		memcpy(nulls8, nulls, sizeof(nulls));
		types8[7] = TEXTOID;
		if (comment)
		{
			values8[7] = CStringGetTextDatum(comment);
			nulls8[7] = ' ';
		}
		else
			nulls8[7] = 'n';
		types8[8] = INT4OID;
		values8[8] = Int32GetDatum(pad_to);
		nulls8[8] = ' ';
		/* pad_to only when set: a 0.1.0 key table (not yet updated) has no such column */
		rc = SPI_execute_with_args(pad_to != 0 ?
								   "INSERT INTO customer_vault.data_keys"
								   " (id, name, version, subject, state, wrapped, root_fingerprint, fingerprint, comment, pad_to)"
								   " VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9)" :
								   "INSERT INTO customer_vault.data_keys"
								   " (id, name, version, subject, state, wrapped, root_fingerprint, fingerprint, comment)"
								   " VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8)",
								   pad_to != 0 ? 9 : 8, types8, values8, nulls8, false, 0);
	}
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not store data key: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
	{
		cv_wipe(dk, CV_KEY_LEN);
		return 0;
	}
	cv_keys_created_in_xact = true;
	return id;
}

/* look a subject's live key id up in the table; 0 when none */
static uint32
cv_subject_key_id(const char *subject)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	Snapshot	snap;
	uint32		id = 0;

	rel = table_open(cv_dk_rows, AccessShareLock);
	snap = cv_fresh_snapshot();
	ScanKeyInit(&skey, Anum_dk_subject, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(subject));
	scan = systable_beginscan(rel, cv_dk_rows_subject_idx, true, snap, 1, &skey);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		st = heap_getattr(tup, Anum_dk_state, desc, &isnull);

		if (!isnull && strcmp(TextDatumGetCString(st), "destroyed") != 0)
			id = (uint32) DatumGetInt32(heap_getattr(tup, Anum_dk_id, desc, &isnull));
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return id;
}

/* check a subject identifier */
static void
cv_check_subject(const char *subject)
{
	if (subject[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject identifier must not be empty")));
	if (strlen(subject) > CV_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("subject identifier is too long"),
				 errdetail("A subject identifier is at most %d bytes long.", CV_SUBJECT_MAX)));
}

/* the live key of a subject, created on first use when asked; NULL if none */
CvKey *
CvSubjectKey(const char *subject, bool create)
{
	CvSubjectEntry *e;
	uint32		id;
	bool		found;

	cv_check_subject(subject);
	cv_cache_prepare();
	e = hash_search(cv_subject_cache, subject, HASH_FIND, NULL);
	if (e != NULL)
		return CvKeyById(e->key_id);

	id = cv_subject_key_id(subject);
	if (id == 0 && create)
	{
		CvOwnerSwitch sw;

		/*
		 * On a Citus worker (a shard task of a distributed INSERT ... SELECT,
		 * or a session connected there) the key would be written to the
		 * reference table data_keys from the worker, through every node,
		 * while the statement that asked for it holds its shards: the two
		 * waited on each other.  Keys are made through the coordinator.
		 */
		if (CvCitusIsWorker())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a new subject key must be made on the Citus coordinator"),
					 errdetail("encrypt_for_subject() ran on a worker for a subject that has no key yet (a distributed INSERT ... SELECT runs it there)."),
					 errhint("Make the new subjects' keys on the coordinator first, e.g. SELECT customer_vault.encrypt_for_subject(s, '') FROM unnest($1::text[]) s, or insert with VALUES.")));
		cv_become_owner(&sw);
		id = cv_insert_key(NULL, 1, subject, NULL, 0, true);
		cv_restore_user(&sw);
		CommandCounterIncrement();
		if (id != 0)
		{
			/* the new key is still in cv_scratch: cache it without reading it back */
			CvKey		meta;

			memset(&meta, 0, sizeof(meta));
			meta.id = id;
			meta.version = 1;
			meta.is_subject = true;
			cv_cache_prepare();
			(void) cv_cache_insert(&meta, cv_scratch);
		}
		else
			id = cv_subject_key_id(subject);
		if (id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create a key for the subject because of a concurrent change"),
					 errhint("Retry the transaction.")));
	}
	if (id == 0)
		return NULL;
	cv_cache_prepare();
	e = hash_search(cv_subject_cache, subject, HASH_ENTER, &found);
	e->key_id = id;
	return CvKeyById(id);
}

/* ---------- SQL-callable key management ---------- */

PG_FUNCTION_INFO_V1(cv_create_key);
PG_FUNCTION_INFO_V1(cv_rotate_key);
PG_FUNCTION_INFO_V1(cv_rewrap_keys);
PG_FUNCTION_INFO_V1(cv_shred_subject);
PG_FUNCTION_INFO_V1(cv_root_key_fingerprint);
PG_FUNCTION_INFO_V1(cv_keys_invalidate);
PG_FUNCTION_INFO_V1(cv_subject_has_key);

/* _subject_has_key(subject): whether the subject has a live key (no unwrapping) */
Datum
cv_subject_has_key(PG_FUNCTION_ARGS)
{
	char	   *subject = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (subject[0] == '\0' || strlen(subject) > CV_SUBJECT_MAX)
		PG_RETURN_BOOL(false);
	cv_cache_prepare();
	PG_RETURN_BOOL(cv_subject_key_id(subject) != 0);
}

/* check a length padding block given by a user */
static int32
cv_check_pad_to(FunctionCallInfo fcinfo, int argno)
{
	int32		pad_to;

	if (PG_NARGS() <= argno)
		return 0;
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("padding block must not be null"),
				 errhint("Pass 0 for no length padding.")));
	pad_to = PG_GETARG_INT32(argno);
	if (pad_to < 0 || pad_to > CV_PAD_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("padding block %d is out of range", pad_to),
				 errdetail("The padding block is 0 (no padding) or 1 to %d bytes.", CV_PAD_MAX)));
	return pad_to;
}

/* create_key(name, comment, pad_to): a new random data key, version 1 */
Datum
cv_create_key(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *comment = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		pad_to = cv_check_pad_to(fcinfo, 2);
	CvOwnerSwitch sw;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	uint32		id;

	/* the registry and the keys are changed through the coordinator only */
	CvRefuseOnCitusWorker("create_key()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	cv_check_key_name(name);
	(void) cv_root_get(false);	/* refuse early without a root key */

	cv_become_owner(&sw);
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT 1 FROM customer_vault.data_keys WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the key table");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("key \"%s\" already exists", name),
				 errhint("Use customer_vault.rotate_key() to give it a new version.")));
	id = cv_insert_key(name, 1, NULL, comment, pad_to, false);
	cv_restore_user(&sw);
	PG_RETURN_INT32((int32) id);
}

/* rotate_key(name): a new active version; older versions become decrypt-only */
Datum
cv_rotate_key(PG_FUNCTION_ARGS)
{
	char	   *name;
	CvOwnerSwitch sw;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int32		maxver = 0;
	int32		pad_to = 0;
	uint64		i;

	/* the registry and the keys are changed through the coordinator only */
	CvRefuseOnCitusWorker("rotate_key()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	cv_check_key_name(name);
	(void) cv_root_get(false);

	cv_become_owner(&sw);
	values[0] = CStringGetTextDatum(name);
	cv_cache_prepare();
	if (SPI_execute_with_args(get_attnum(cv_data_keys_relid, "pad_to") != InvalidAttrNumber ?
							  "SELECT version, pad_to FROM customer_vault.data_keys WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
							  "SELECT version, 0 FROM customer_vault.data_keys WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the key table");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key \"%s\" does not exist", name),
				 errhint("Create it with customer_vault.create_key().")));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		/* the new version pads like the newest one */
		if (v > maxver)
		{
			maxver = v;
			pad_to = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
			if (isnull)
				pad_to = 0;
		}
	}
	if (SPI_execute_with_args("UPDATE customer_vault.data_keys SET state = 'decrypt_only'"
							  " WHERE name OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the key table");
	(void) cv_insert_key(name, maxver + 1, NULL, NULL, pad_to, false);
	cv_restore_user(&sw);
	/* this session encrypts under the new version from now on */
	if (cv_name_cache != NULL)
		(void) hash_search(cv_name_cache, name, HASH_REMOVE, NULL);
	PG_RETURN_INT32(maxver + 1);
}

/* rewrap_keys(): re-wrap every live data key under the current root key */
Datum
cv_rewrap_keys(PG_FUNCTION_ARGS)
{
	CvOwnerSwitch sw;
	CvRoot	   *cur = cv_root_get(false);
	bytea	   *curfp = palloc(VARHDRSZ + CV_FP_LEN);
	Oid			types[3] = {INT4OID, BYTEAOID, BYTEAOID};
	int32		count = 0;
	uint64		n,
				i;
	SPITupleTable *tt;
	Datum		fpval;

	/* the registry and the keys are changed through the coordinator only */
	CvRefuseOnCitusWorker("rewrap_keys()");
	SET_VARSIZE(curfp, VARHDRSZ + CV_FP_LEN);
	memcpy(VARDATA(curfp), cur->fp, CV_FP_LEN);
	fpval = PointerGetDatum(curfp);

	cv_become_owner(&sw);
	if (SPI_execute_with_args("SELECT id, wrapped, root_fingerprint FROM customer_vault.data_keys"
							  " WHERE wrapped IS NOT NULL AND root_fingerprint OPERATOR(pg_catalog.<>) $1"
							  " ORDER BY id FOR UPDATE",
							  1, &types[1], &fpval, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the key table");
	n = SPI_processed;
	tt = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		uint32		id = (uint32) DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		bytea	   *w = DatumGetByteaPP(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
		bytea	   *fp = DatumGetByteaPP(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));
		uint8	   *dk = cv_scratch;
		bytea	   *neww;
		bytea	   *newfp;
		Datum		values[3];

		cv_unwrap(id, w, fp, dk);
		neww = cv_wrap(id, dk, &newfp);
		cv_wipe(dk, CV_KEY_LEN);
		values[0] = Int32GetDatum((int32) id);
		values[1] = PointerGetDatum(neww);
		values[2] = PointerGetDatum(newfp);
		if (SPI_execute_with_args("UPDATE customer_vault.data_keys SET wrapped = $2, root_fingerprint = $3"
								  " WHERE id OPERATOR(pg_catalog.=) $1",
								  3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update the key table");
		count++;
	}
	cv_restore_user(&sw);
	PG_RETURN_INT32(count);
}

/* shred_subject(subject): destroy the subject's key; true if one existed */
Datum
cv_shred_subject(PG_FUNCTION_ARGS)
{
	char	   *subject;
	CvOwnerSwitch sw;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		found;
	uint64		i;

	/* the registry and the keys are changed through the coordinator only */
	CvRefuseOnCitusWorker("shred_subject()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject identifier must not be null")));
	subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	cv_check_subject(subject);

	cv_become_owner(&sw);
	values[0] = CStringGetTextDatum(subject);
	if (SPI_execute_with_args("UPDATE customer_vault.data_keys"
							  " SET state = 'destroyed', wrapped = NULL, subject = NULL,"
							  "     destroyed_at = pg_catalog.now()"
							  " WHERE subject OPERATOR(pg_catalog.=) $1 RETURNING id",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not update the key table");
	found = SPI_processed > 0;

	/*
	 * Our own cache: the key reads as destroyed at once (its entry stays
	 * allocated, so references in use remain valid; it is wiped with the
	 * generation at the next statement); other backends get the invalidation.
	 */
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		uint32		id = (uint32) DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
															  SPI_tuptable->tupdesc, 1, &isnull));
		CvKey	   *k = cv_key_cache ? hash_search(cv_key_cache, &id, HASH_FIND, NULL) : NULL;

		if (k != NULL)
			k->destroyed = true;
	}
	if (cv_subject_cache != NULL)
		(void) hash_search(cv_subject_cache, subject, HASH_REMOVE, NULL);
	cv_restore_user(&sw);
	cv_keys_stale = true;
	PG_RETURN_BOOL(found);
}

/*
 * CvShredSubjects: shred_subject for every subject of a text[] (the
 * spellings of one subject forget_subject erases) in one statement with a
 * kept plan, run only when one of them has a live key; true if any had one.
 * Empty or too long elements are skipped (no key can exist for them).
 */
bool
CvShredSubjects(Datum subjects)
{
	static SPIPlanPtr plan = NULL;
	CvOwnerSwitch sw;
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	bool		found;
	uint64		i;
	ArrayType  *arr = DatumGetArrayTypeP(subjects);
	Datum	   *el;
	bool	   *nl;
	int			ne;
	int			j;

	/*
	 * No UPDATE when no spelling has a live key (one index probe each): the
	 * key table's statement trigger would tell every session to drop its
	 * key cache for nothing.
	 */
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &el, &nl, &ne);
	cv_cache_prepare();
	found = false;
	{
		Relation	rel = table_open(cv_dk_rows, AccessShareLock);
		Snapshot	snap = cv_fresh_snapshot();
		TupleDesc	desc = RelationGetDescr(rel);

		for (j = 0; j < ne && !found; j++)
		{
			SysScanDesc scan;
			ScanKeyData skey;
			HeapTuple	tup;

			if (nl[j] || VARSIZE_ANY_EXHDR(DatumGetTextPP(el[j])) == 0 ||
				VARSIZE_ANY_EXHDR(DatumGetTextPP(el[j])) > CV_SUBJECT_MAX)
				continue;
			ScanKeyInit(&skey, Anum_dk_subject, BTEqualStrategyNumber, F_TEXTEQ, el[j]);
			scan = systable_beginscan(rel, cv_dk_rows_subject_idx, true, snap, 1, &skey);
			while (HeapTupleIsValid(tup = systable_getnext(scan)))
			{
				bool		isnull;
				Datum		st = heap_getattr(tup, Anum_dk_state, desc, &isnull);

				if (!isnull && strcmp(TextDatumGetCString(st), "destroyed") != 0)
					found = true;
			}
			systable_endscan(scan);
		}
		UnregisterSnapshot(snap);
		table_close(rel, AccessShareLock);
	}
	if (!found)
		return false;

	cv_become_owner(&sw);
	values[0] = subjects;
	if (SPI_execute_plan(CvSavedPlan(&plan,
									 "UPDATE customer_vault.data_keys"
									 " SET state = 'destroyed', wrapped = NULL, subject = NULL,"
									 "     destroyed_at = pg_catalog.now()"
									 " WHERE subject OPERATOR(pg_catalog.=) ANY ($1) RETURNING id",
									 1, types),
						 values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not update the key table");
	found = SPI_processed > 0;
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		uint32		id = (uint32) DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
															  SPI_tuptable->tupdesc, 1, &isnull));
		CvKey	   *k = cv_key_cache ? hash_search(cv_key_cache, &id, HASH_FIND, NULL) : NULL;

		if (k != NULL)
			k->destroyed = true;
	}
	/* every spelling leaves this session's subject cache */
	if (found && cv_subject_cache != NULL)
	{
		for (j = 0; j < ne; j++)
		{
			char	   *sj;

			if (nl[j])
				continue;
			sj = TextDatumGetCString(el[j]);
			if (sj[0] != '\0' && strlen(sj) <= CV_SUBJECT_MAX)
				(void) hash_search(cv_subject_cache, sj, HASH_REMOVE, NULL);
		}
	}
	cv_restore_user(&sw);
	if (found)
		cv_keys_stale = true;
	return found;
}

/* root_key_fingerprint(): fingerprint of the configured root key, hex */
Datum
cv_root_key_fingerprint(PG_FUNCTION_ARGS)
{
	CvRoot	   *cur = cv_root_get(false);
	char		hex[CV_FP_LEN * 2 + 1];

	hex_encode((const char *) cur->fp, CV_FP_LEN, hex);
	hex[CV_FP_LEN * 2] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/* statement trigger on data_keys: tell every backend to flush its key cache */
Datum
cv_keys_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	cv_keys_stale = true;
	return PointerGetDatum(NULL);
}

/* ---------- the subject hash (erasure receipts, export records, access log) ---------- */

/* the id of the active subject-hash key in the table; 0 when there is none */
static uint32
cv_hash_key_lookup(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	Snapshot	snap;
	uint32		id = 0;

	rel = table_open(cv_dk_rows, AccessShareLock);
	snap = cv_fresh_snapshot();
	ScanKeyInit(&skey, Anum_dk_name, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(cv_subject_hash_key_name));
	scan = systable_beginscan(rel, cv_dk_rows_name_idx, true, snap, 1, &skey);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		st = heap_getattr(tup, Anum_dk_state, desc, &isnull);

		if (!isnull && strcmp(TextDatumGetCString(st), "active") == 0)
			id = (uint32) DatumGetInt32(heap_getattr(tup, Anum_dk_id, desc, &isnull));
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return id;
}

/*
 * CvSubjectHash: HMAC-SHA-256 of a subject identifier under the dedicated
 * subject-hash key (through its HKDF subkey, as blind indexes are made), so
 * logs and receipts can say "which subject" without keeping the subject.
 * The key is a random data key of its own, wrapped under the root key like
 * every other (rewrap_keys carries it to a new root key), never rotated and
 * never shredded: hashes stay comparable for the life of the database.  It
 * is created on first need when create is true and this transaction can
 * write; false (out untouched) when it does not exist and cannot be made
 * (a standby or a read-only transaction before any was made).
 */
bool
CvSubjectHash(const char *subject, int len, bool create, uint8 out[32])
{
	CvKey	   *k;
	bytea	   *mac;
	uint32		id;

	cv_cache_prepare();
	id = cv_hash_key_id;
	if (id == 0)
		id = cv_hash_key_lookup();
	if (id == 0)
	{
		CvOwnerSwitch sw;

		if (!create || RecoveryInProgress() || XactReadOnly || IsInParallelMode())
			return false;

		/*
		 * Not on a Citus worker: the key table is a reference table, a key
		 * made there would be written from a worker into every node's
		 * registry (the coordinator's too) behind the coordinator's back.
		 */
		if (CvCitusIsWorker())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the subject hash key does not exist yet and cannot be created on a Citus worker"),
					 errhint("Run customer_vault.was_forgotten(), subject_access() or forget_subject() on the coordinator first: it creates the key.")));
		(void) cv_root_get(false);	/* refuse early without a root key */
		cv_become_owner(&sw);
		(void) cv_insert_key(cv_subject_hash_key_name, 1, NULL,
							 "keyed hash of subject identifiers (erasure receipts, export records, access log); never rotated or shredded",
							 0, false);
		cv_restore_user(&sw);
		CommandCounterIncrement();
		/* ours, or the one a concurrent creator committed first */
		id = cv_hash_key_lookup();
		if (id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not create the subject hash key because of a concurrent change"),
					 errhint("Retry the transaction.")));
	}
	k = CvKeyById(id);
	if (k->destroyed || k->bidx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the subject hash key %u is destroyed", id),
				 errdetail("Its key was removed from customer_vault.data_keys behind the extension's back.")));
	cv_hash_key_id = id;
	mac = CvBlindMac(k, subject, (size_t) len);
	memcpy(out, VARDATA(mac), CV_MAC_LEN);
	pfree(mac);
	return true;
}

PG_FUNCTION_INFO_V1(cv_subject_hash);

/* _subject_hash(subject): the keyed hash of a subject; NULL when no key exists and none can be made */
Datum
cv_subject_hash(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	bytea	   *res = palloc(VARHDRSZ + CV_MAC_LEN);

	if (!CvSubjectHash(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), true, (uint8 *) VARDATA(res)))
		PG_RETURN_NULL();
	SET_VARSIZE(res, VARHDRSZ + CV_MAC_LEN);
	PG_RETURN_BYTEA_P(res);
}
