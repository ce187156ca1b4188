/*-------------------------------------------------------------------------
 * envelope.h
 *		The ciphertext envelope of customer_vault: its binary layout, its
 *		text form, and their validation.  Pure C: no server calls, so the
 *		parser can be tested and fuzzed without a running server.
 *
 * Binary layout (the varlena payload, also the send/recv form):
 *
 *	 offset  size  field
 *	 0       1     format version (CV_ENV_VERSION)
 *	 1       1     value type (CV_ENV_TYPE_TEXT or CV_ENV_TYPE_BYTEA)
 *	 2       1     flags (CV_ENV_FLAG_CONTEXT: a context is bound;
 *	               CV_ENV_FLAG_PADDED: the plaintext is length-padded)
 *	 3       1     reserved, must be zero
 *	 4       4     data key id, big-endian, > 0
 *	 8       12    nonce
 *	 20      n     AES-256-GCM ciphertext
 *	 20+n    16    authentication tag
 *
 * The first 8 bytes (the header) are part of the associated data, so no
 * field can be changed without the value failing to authenticate.
 *
 * Length padding (CV_ENV_FLAG_PADDED): the sealed plaintext is the value
 * followed by one 0x80 byte and as many zero bytes as bring its length to a
 * multiple of the key's block (ISO/IEC 7816-4 padding), so values shorter
 * than the block all have the same length.  The padding is inside the
 * AEAD (authenticated) and the flag is in the header (authenticated);
 * opening strips it and refuses a padded value whose padding is malformed.
 * Values sealed without the flag (all values of 0.1.0) open as before.
 *
 * Text form: CV_ENV_TEXT_PREFIX followed by the standard base64 encoding
 * (with padding, no line breaks) of the binary form.
 *-------------------------------------------------------------------------
 */
#ifndef CV_ENVELOPE_H
#define CV_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define CV_ENV_VERSION			1
#define CV_ENV_TYPE_TEXT		1
#define CV_ENV_TYPE_BYTEA		2
#define CV_ENV_FLAG_CONTEXT		0x01
#define CV_ENV_FLAG_PADDED		0x02
#define CV_ENV_FLAGS_KNOWN		(CV_ENV_FLAG_CONTEXT | CV_ENV_FLAG_PADDED)
/* the largest padding block: 0 (no padding) or 1 .. CV_PAD_MAX bytes */
#define CV_PAD_MAX				4096

#define CV_ENV_HEADER_LEN		8
#define CV_NONCE_LEN			12
#define CV_TAG_LEN				16
#define CV_ENV_OVERHEAD			(CV_ENV_HEADER_LEN + CV_NONCE_LEN + CV_TAG_LEN)
/* largest plaintext accepted: well under the 1 GB varlena limit after base64 */
#define CV_MAX_PLAINTEXT		(512 * 1024 * 1024)

#define CV_ENV_TEXT_PREFIX		"cv1$"
#define CV_ENV_TEXT_PREFIX_LEN	4

typedef enum CvEnvError
{
	CV_ENV_OK = 0,
	CV_ENV_TOO_SHORT,
	CV_ENV_BAD_VERSION,
	CV_ENV_BAD_TYPE,
	CV_ENV_BAD_FLAGS,
	CV_ENV_BAD_RESERVED,
	CV_ENV_BAD_KEY_ID,
	CV_ENV_BAD_PREFIX,
	CV_ENV_BAD_BASE64,
	CV_ENV_TOO_LONG
} CvEnvError;

/* a parsed envelope: pointers into the caller's buffer */
typedef struct CvEnvelope
{
	uint8_t		version;
	uint8_t		type;
	uint8_t		flags;
	uint32_t	key_id;
	const uint8_t *header;		/* CV_ENV_HEADER_LEN bytes */
	const uint8_t *nonce;		/* CV_NONCE_LEN bytes */
	const uint8_t *ciphertext;
	size_t		ciphertext_len;
	const uint8_t *tag;			/* CV_TAG_LEN bytes */
} CvEnvelope;

extern CvEnvError cv_envelope_parse(const uint8_t *buf, size_t len, int expected_type,
									CvEnvelope *out);
extern void cv_envelope_write_header(uint8_t *buf, int type, int flags, uint32_t key_id);
extern const char *cv_envelope_strerror(CvEnvError err);

/* length of the base64 encoding of len bytes */
static inline size_t
cv_base64_encoded_len(size_t len)
{
	return ((len + 2) / 3) * 4;
}

extern size_t cv_base64_encode(const uint8_t *src, size_t len, char *dst);
extern size_t cv_base64_max_decoded_len(size_t len);
extern long cv_base64_decode(const char *src, size_t len, uint8_t *dst);

/* length of the text form of a binary envelope of binlen bytes */
static inline size_t
cv_envelope_text_len(size_t binlen)
{
	return CV_ENV_TEXT_PREFIX_LEN + cv_base64_encoded_len(binlen);
}

extern size_t cv_envelope_to_text(const uint8_t *bin, size_t binlen, char *dst);
extern CvEnvError cv_envelope_text_check(const char *src, size_t len, int expected_type);
extern CvEnvError cv_envelope_from_text(const char *src, size_t len, uint8_t *dst,
										size_t *dstlen);

/*
 * The length of the plaintext as sealed: pt_len itself without padding,
 * else the next multiple of pad_to that leaves room for the 0x80 marker.
 */
static inline size_t
cv_padded_len(size_t pt_len, unsigned pad_to)
{
	if (pad_to == 0)
		return pt_len;
	return (pt_len / pad_to + 1) * pad_to;
}

/* the binary length of the envelope sealing pt_len bytes */
static inline size_t
cv_envelope_sealed_len(size_t pt_len, unsigned pad_to)
{
	return CV_ENV_OVERHEAD + cv_padded_len(pt_len, pad_to);
}

/*
 * Sealing and opening whole envelopes with a given key (no key lookup, no
 * server calls).  ctx NULL = no context (the context flag clear); pad_to 0 =
 * no padding.
 */

extern bool cv_envelope_seal(CvAead *aead, uint8_t *out, int type, uint32_t key_id,
							 const uint8_t nonce[CV_NONCE_LEN],
							 const uint8_t *ctx, size_t ctx_len,
							 const uint8_t *pt, size_t pt_len, unsigned pad_to);
extern int	cv_envelope_open(CvAead *aead, const CvEnvelope *env,
							 const uint8_t *ctx, size_t ctx_len,
							 uint8_t *pt, size_t *pt_len);

#endif							/* CV_ENVELOPE_H */
