/*-------------------------------------------------------------------------
 * main.c
 *		Module entry point of customer_vault: PG_MODULE_MAGIC and _PG_init,
 *		which only delegates to the modules.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "miscadmin.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

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
}

PG_FUNCTION_INFO_V1(cv_version);

/* the version this shared library was built as */
Datum
cv_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CV_VERSION));
}
