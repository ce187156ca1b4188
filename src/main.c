/*-------------------------------------------------------------------------
 * main.c
 *		Module entry point of customer_vault: PG_MODULE_MAGIC and _PG_init,
 *		which only delegates to the modules.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* every module's shared memory request (preloaded only) */
static void
cv_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	AuditShmemRequest();
}

/* every module's shared memory set-up (preloaded only) */
static void
cv_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	AuditShmemStartup();
}

/* set up settings, the label provider and the key cache, once per process */
void
_PG_init(void)
{
	static bool inited = false;

	if (inited)
		return;
	inited = true;

	GucInit();
	LabelsInit();
	if (IsBinaryUpgrade)
		return;
	KeysInit();
	ConsentInit();
	BrakeInit();
	AuditInit();
	if (process_shared_preload_libraries_in_progress)
	{
		/* OpenSSL's one-time set-up here, inherited by every backend */
		cv_crypto_warm_up();
		/* "provider" (its AES-256-GCM functions called directly) or "evp" */
		elog(DEBUG1, "customer_vault: AES-256-GCM path: %s", cv_aead_path());
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = cv_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = cv_shmem_startup;
	}
}

PG_FUNCTION_INFO_V1(cv_version);

/* the version this shared library was built as */
Datum
cv_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CV_VERSION));
}
