/*-------------------------------------------------------------------------
 * envelope.c
 *		Parse, format and validate the ciphertext envelope (see envelope.h),
 *		and seal/open a whole envelope (header, nonce, length padding, AEAD)
 *		with a key the caller has looked up.  Pure C, no server calls: the
 *		standalone test program test/unit/test_core.c runs all of it.
 *-------------------------------------------------------------------------
 */
#include "envelope.h"

#include <string.h>

/*
 * x86-64: SSE2 is always there (the alphabet check uses it); SSSE3's byte
 * shuffle, which the 16-character encoder needs, is checked at run time.
 * Elsewhere, or built with CV_B64_PORTABLE (the unit test's third build),
 * the portable code below runs alone.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(CV_B64_PORTABLE)
#include <emmintrin.h>
#include <tmmintrin.h>
#include <immintrin.h>
#define CV_B64_X86 1
#endif

static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* reverse table: -1 for characters outside the alphabet */
static const signed char b64_reverse[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
};

/*
 * The checks of the 8 header bytes (after the length checks): shared by
 * cv_envelope_parse and the text form's check, which must accept the same.
 */
static inline CvEnvError
cv_envelope_header_check(const uint8_t *h, int expected_type)
{
	uint32_t	key_id;

	if (h[0] != CV_ENV_VERSION)
		return CV_ENV_BAD_VERSION;
	if (h[1] != CV_ENV_TYPE_TEXT && h[1] != CV_ENV_TYPE_BYTEA)
		return CV_ENV_BAD_TYPE;
	if (expected_type != 0 && h[1] != expected_type)
		return CV_ENV_BAD_TYPE;
	if ((h[2] & ~CV_ENV_FLAGS_KNOWN) != 0)
		return CV_ENV_BAD_FLAGS;
	if (h[3] != 0)
		return CV_ENV_BAD_RESERVED;
	key_id = ((uint32_t) h[4] << 24) | ((uint32_t) h[5] << 16) |
		((uint32_t) h[6] << 8) | (uint32_t) h[7];
	if (key_id == 0 || key_id > 0x7FFFFFFF)
		return CV_ENV_BAD_KEY_ID;
	return CV_ENV_OK;
}

/* check the binary form and point the fields of *out into buf */
CvEnvError
cv_envelope_parse(const uint8_t *buf, size_t len, int expected_type, CvEnvelope *out)
{
	CvEnvError	err;

	if (len < CV_ENV_OVERHEAD)
		return CV_ENV_TOO_SHORT;
	if (len - CV_ENV_OVERHEAD > CV_MAX_PLAINTEXT)
		return CV_ENV_TOO_LONG;
	err = cv_envelope_header_check(buf, expected_type);
	if (err != CV_ENV_OK)
		return err;

	out->version = buf[0];
	out->type = buf[1];
	out->flags = buf[2];
	out->key_id = ((uint32_t) buf[4] << 24) | ((uint32_t) buf[5] << 16) |
		((uint32_t) buf[6] << 8) | (uint32_t) buf[7];
	out->header = buf;
	out->nonce = buf + CV_ENV_HEADER_LEN;
	out->ciphertext = buf + CV_ENV_HEADER_LEN + CV_NONCE_LEN;
	out->ciphertext_len = len - CV_ENV_OVERHEAD;
	out->tag = buf + len - CV_TAG_LEN;
	return CV_ENV_OK;
}

/* write the 8-byte header for a new value */
void
cv_envelope_write_header(uint8_t *buf, int type, int flags, uint32_t key_id)
{
	buf[0] = CV_ENV_VERSION;
	buf[1] = (uint8_t) type;
	buf[2] = (uint8_t) flags;
	buf[3] = 0;
	buf[4] = (uint8_t) (key_id >> 24);
	buf[5] = (uint8_t) (key_id >> 16);
	buf[6] = (uint8_t) (key_id >> 8);
	buf[7] = (uint8_t) key_id;
}

/* a short description of a parse failure, for errdetail (never quotes the input) */
const char *
cv_envelope_strerror(CvEnvError err)
{
	switch (err)
	{
		case CV_ENV_OK:
			return "valid envelope";
		case CV_ENV_TOO_SHORT:
			return "The envelope is shorter than its fixed overhead.";
		case CV_ENV_BAD_VERSION:
			return "The envelope has an unknown format version.";
		case CV_ENV_BAD_TYPE:
			return "The envelope holds a value of another type.";
		case CV_ENV_BAD_FLAGS:
			return "The envelope has unknown flags set.";
		case CV_ENV_BAD_RESERVED:
			return "The envelope's reserved field is not zero.";
		case CV_ENV_BAD_KEY_ID:
			return "The envelope names an invalid key id.";
		case CV_ENV_BAD_PREFIX:
			return "The text form does not start with the envelope prefix.";
		case CV_ENV_BAD_BASE64:
			return "The text form is not valid base64.";
		case CV_ENV_TOO_LONG:
			return "The envelope is longer than the largest value allowed.";
	}
	return "The envelope is malformed.";
}

/* the two characters of every 12-bit value, filled on first use */
static char b64_pairs[4096][2];
static bool b64_pairs_ready = false;

#ifdef CV_B64_X86
static bool b64_ssse3 = false;
static bool b64_avx2 = false;

/* whether the CPU has AVX2 (asked once) */
static bool
cv_b64_have_avx2(void)
{
	static int	have = -1;

	if (have < 0)
		have = __builtin_cpu_supports("avx2") ? 1 : 0;
	return have == 1;
}

/*
 * Encode while at least 16 bytes can be read from src + i: each step takes
 * 12 of them (four groups of three) to 16 characters.  Returns the bytes
 * consumed; the characters are at dst + (consumed / 3) * 4.
 *
 * Per 32-bit lane the shuffle places a group's bytes a, b, c as b, a, c, b,
 * so that its 16-bit halves are (a << 8 | b) and (b << 8 | c).  The first
 * holds index 0 in bits 15..10 and index 1 in bits 9..4; the second index 2
 * in bits 11..6 and index 3 in bits 5..0.  A high multiply brings indexes 0
 * and 2 down to the low byte of their half, a low multiply moves indexes 1
 * and 3 up to the high byte: the lane's bytes are then the four indexes in
 * order.  An index becomes its character by adding an offset chosen by its
 * range: 0-25 'A', 26-51 'a' - 26, 52-61 '0' - 52, 62 '+' - 62, 63 '/' - 63.
 */
__attribute__((target("ssse3")))
static size_t
cv_base64_encode_ssse3(const uint8_t *src, size_t len, char *dst)
{
	const __m128i order = _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
	const __m128i mask02 = _mm_set1_epi32(0x0fc0fc00);
	const __m128i mul02 = _mm_set1_epi32(0x04000040);
	const __m128i mask13 = _mm_set1_epi32(0x003f03f0);
	const __m128i mul13 = _mm_set1_epi32(0x01000010);
	/* offsets by class: 0 for 26-51, 1-10 for 52-61, 11 for 62, 12 for 63, 13 for 0-25 */
	const __m128i offsets = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
										  '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
										  '+' - 62, '/' - 63, 'A', 0, 0);
	size_t		i = 0,
				o = 0;

	for (; i + 16 <= len; i += 12, o += 16)
	{
		__m128i		in = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (src + i)), order);
		__m128i		idx02 = _mm_mulhi_epu16(_mm_and_si128(in, mask02), mul02);
		__m128i		idx13 = _mm_mullo_epi16(_mm_and_si128(in, mask13), mul13);
		__m128i		idx = _mm_or_si128(idx02, idx13);
		__m128i		cls = _mm_subs_epu8(idx, _mm_set1_epi8(51));

		cls = _mm_or_si128(cls, _mm_and_si128(_mm_cmplt_epi8(idx, _mm_set1_epi8(26)), _mm_set1_epi8(13)));
		_mm_storeu_si128((__m128i *) (dst + o),
						 _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, cls)));
	}
	return i;
}

/*
 * The same, 24 bytes to 32 characters a step, while at least 28 bytes can
 * be read from src + i: each 128-bit lane takes one group of 12 bytes
 * (loaded at i and i + 12) exactly as a step above does.
 */
__attribute__((target("avx2")))
static size_t
cv_base64_encode_avx2(const uint8_t *src, size_t len, char *dst)
{
	const __m256i order = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
										   1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
	const __m256i mask02 = _mm256_set1_epi32(0x0fc0fc00);
	const __m256i mul02 = _mm256_set1_epi32(0x04000040);
	const __m256i mask13 = _mm256_set1_epi32(0x003f03f0);
	const __m256i mul13 = _mm256_set1_epi32(0x01000010);
	const __m256i offsets = _mm256_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
											 '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
											 '+' - 62, '/' - 63, 'A', 0, 0,
											 'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
											 '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
											 '+' - 62, '/' - 63, 'A', 0, 0);
	size_t		i = 0,
				o = 0;

	for (; i + 28 <= len; i += 24, o += 32)
	{
		__m256i		in = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *) (src + i))),
												 _mm_loadu_si128((const __m128i *) (src + i + 12)), 1);
		__m256i		idx02,
					idx13,
					idx,
					cls;

		in = _mm256_shuffle_epi8(in, order);
		idx02 = _mm256_mulhi_epu16(_mm256_and_si256(in, mask02), mul02);
		idx13 = _mm256_mullo_epi16(_mm256_and_si256(in, mask13), mul13);
		idx = _mm256_or_si256(idx02, idx13);
		cls = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
		cls = _mm256_or_si256(cls, _mm256_and_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(26), idx),
													_mm256_set1_epi8(13)));
		_mm256_storeu_si256((__m256i *) (dst + o),
							_mm256_add_epi8(idx, _mm256_shuffle_epi8(offsets, cls)));
	}
	return i;
}
#endif

/* encode len bytes into dst (no terminator); returns the length written */
size_t
cv_base64_encode(const uint8_t *src, size_t len, char *dst)
{
	size_t		i = 0,
				o = 0;

	if (!b64_pairs_ready)
	{
		int			k;

		for (k = 0; k < 4096; k++)
		{
			b64_pairs[k][0] = b64_alphabet[k >> 6];
			b64_pairs[k][1] = b64_alphabet[k & 63];
		}
#ifdef CV_B64_X86
		b64_ssse3 = __builtin_cpu_supports("ssse3");
		b64_avx2 = b64_ssse3 && cv_b64_have_avx2();
#endif
		b64_pairs_ready = true;
	}
#ifdef CV_B64_X86
	if (b64_avx2 && len >= 28)
	{
		i = cv_base64_encode_avx2(src, len, dst);
		o = (i / 3) * 4;
	}
	if (b64_ssse3 && len - i >= 16)
	{
		size_t		k = cv_base64_encode_ssse3(src + i, len - i, dst + o);

		i += k;
		o += (k / 3) * 4;
	}
#endif
	/* 6 bytes -> 8 characters, four table look-ups of two characters each */
	while (i + 6 <= len)
	{
		uint64_t	v = ((uint64_t) src[i] << 40) | ((uint64_t) src[i + 1] << 32) |
			((uint64_t) src[i + 2] << 24) | ((uint64_t) src[i + 3] << 16) |
			((uint64_t) src[i + 4] << 8) | src[i + 5];
		char		out[8];

		memcpy(out, b64_pairs[v >> 36], 2);
		memcpy(out + 2, b64_pairs[(v >> 24) & 0xFFF], 2);
		memcpy(out + 4, b64_pairs[(v >> 12) & 0xFFF], 2);
		memcpy(out + 6, b64_pairs[v & 0xFFF], 2);
		memcpy(dst + o, out, 8);
		o += 8;
		i += 6;
	}
	/* 3 bytes -> 4 characters, two table look-ups of two characters each */
	while (i + 3 <= len)
	{
		uint32_t	v = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8) | src[i + 2];

		memcpy(dst + o, b64_pairs[v >> 12], 2);
		memcpy(dst + o + 2, b64_pairs[v & 0xFFF], 2);
		o += 4;
		i += 3;
	}
	if (len - i == 1)
	{
		uint32_t	v = (uint32_t) src[i] << 16;

		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = '=';
		dst[o++] = '=';
	}
	else if (len - i == 2)
	{
		uint32_t	v = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8);

		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = b64_alphabet[(v >> 6) & 63];
		dst[o++] = '=';
	}
	return o;
}

/* upper bound of the decoded length of len base64 characters */
size_t
cv_base64_max_decoded_len(size_t len)
{
	return (len / 4) * 3;
}

/*
 * Decode canonical base64 (length a multiple of 4, padding only at the end,
 * unused bits zero).  Returns the decoded length, or -1 when malformed.
 */
long
cv_base64_decode(const char *src, size_t len, uint8_t *dst)
{
	size_t		i,
				o = 0;
	int			bad = 0;
	int			a,
				b,
				c,
				d;

	if (len % 4 != 0)
		return -1;
	if (len == 0)
		return 0;
	/* every group but the last: four characters of the alphabet, no branch */
	for (i = 0; i + 4 < len; i += 4)
	{
		uint32_t	v;

		a = b64_reverse[(unsigned char) src[i]];
		b = b64_reverse[(unsigned char) src[i + 1]];
		c = b64_reverse[(unsigned char) src[i + 2]];
		d = b64_reverse[(unsigned char) src[i + 3]];
		bad |= a | b | c | d;	/* negative once any is -1 ('=' included) */
		v = ((uint32_t) (a & 63) << 18) | ((uint32_t) (b & 63) << 12) |
			((uint32_t) (c & 63) << 6) | (uint32_t) (d & 63);
		dst[o] = (uint8_t) (v >> 16);
		dst[o + 1] = (uint8_t) (v >> 8);
		dst[o + 2] = (uint8_t) v;
		o += 3;
	}
	if (bad < 0)
		return -1;
	/* the last group: padding allowed, unused bits zero */
	a = b64_reverse[(unsigned char) src[i]];
	b = b64_reverse[(unsigned char) src[i + 1]];
	if (a < 0 || b < 0)
		return -1;
	if (src[i + 2] == '=')
	{
		if (src[i + 3] != '=' || (b & 15) != 0)
			return -1;
		dst[o++] = (uint8_t) ((a << 2) | (b >> 4));
		return (long) o;
	}
	c = b64_reverse[(unsigned char) src[i + 2]];
	if (c < 0)
		return -1;
	if (src[i + 3] == '=')
	{
		if ((c & 3) != 0)
			return -1;
		dst[o++] = (uint8_t) ((a << 2) | (b >> 4));
		dst[o++] = (uint8_t) (((b & 15) << 4) | (c >> 2));
		return (long) o;
	}
	d = b64_reverse[(unsigned char) src[i + 3]];
	if (d < 0)
		return -1;
	dst[o++] = (uint8_t) ((a << 2) | (b >> 4));
	dst[o++] = (uint8_t) (((b & 15) << 4) | (c >> 2));
	dst[o++] = (uint8_t) (((c & 3) << 6) | d);
	return (long) o;
}

/* write the text form (no terminator); returns its length */
size_t
cv_envelope_to_text(const uint8_t *bin, size_t binlen, char *dst)
{
	memcpy(dst, CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN);
	return CV_ENV_TEXT_PREFIX_LEN + cv_base64_encode(bin, binlen, dst + CV_ENV_TEXT_PREFIX_LEN);
}

/*
 * Decode the text form into dst, which must hold
 * cv_base64_max_decoded_len(len) bytes.  Only the prefix and base64 are
 * checked here; the caller then parses the binary form.
 */
CvEnvError
cv_envelope_from_text(const char *src, size_t len, uint8_t *dst, size_t *dstlen)
{
	long		n;

	if (len < CV_ENV_TEXT_PREFIX_LEN ||
		memcmp(src, CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN) != 0)
		return CV_ENV_BAD_PREFIX;
	n = cv_base64_decode(src + CV_ENV_TEXT_PREFIX_LEN, len - CV_ENV_TEXT_PREFIX_LEN, dst);
	if (n < 0)
		return CV_ENV_BAD_BASE64;
	*dstlen = (size_t) n;
	return CV_ENV_OK;
}

/* bytes of x (each below 0x80) that lie in [lo, hi]: their high bit set, the rest clear */
#define CV_SWAR_ONES		UINT64_C(0x0101010101010101)
#define CV_SWAR_HIGH		UINT64_C(0x8080808080808080)
#define CV_SWAR_IN(x, lo, hi) \
	(((x) + CV_SWAR_ONES * (0x80 - (lo))) & ~((x) + CV_SWAR_ONES * (0x7F - (hi))) & CV_SWAR_HIGH)

#ifdef CV_B64_X86
/*
 * The bytes of x that are of the base64 alphabet (0xFF) or not (0x00);
 * signed compares, so 0x80-0xFF are below every range.
 */
__attribute__((target("avx2")))
static inline __m256i
cv_b64_in_alphabet_256(__m256i x)
{
#define IN256(lo, hi) _mm256_and_si256(_mm256_cmpgt_epi8(x, _mm256_set1_epi8((lo) - 1)), \
									   _mm256_cmpgt_epi8(_mm256_set1_epi8((hi) + 1), x))
	return _mm256_or_si256(_mm256_or_si256(IN256('A', 'Z'), IN256('a', 'z')),
						   _mm256_or_si256(IN256('/', '9'), _mm256_cmpeq_epi8(x, _mm256_set1_epi8('+'))));
#undef IN256
}

static inline __m128i
cv_b64_in_alphabet_128(__m128i x)
{
#define IN128(lo, hi) _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((lo) - 1)), \
									_mm_cmplt_epi8(x, _mm_set1_epi8((hi) + 1)))
	return _mm_or_si128(_mm_or_si128(IN128('A', 'Z'), IN128('a', 'z')),
						_mm_or_si128(IN128('/', '9'), _mm_cmpeq_epi8(x, _mm_set1_epi8('+'))));
#undef IN128
}

/*
 * Whether len >= 32 characters are all of the alphabet, thirty-two a step;
 * the last step ends at len (it may test again characters already tested).
 */
__attribute__((target("avx2")))
static bool
cv_base64_alphabet_avx2(const char *s, size_t len)
{
	__m256i		ok = _mm256_set1_epi8(-1);
	size_t		i;

	for (i = 0; i + 32 < len; i += 32)
		ok = _mm256_and_si256(ok, cv_b64_in_alphabet_256(_mm256_loadu_si256((const __m256i *) (s + i))));
	ok = _mm256_and_si256(ok, cv_b64_in_alphabet_256(_mm256_loadu_si256((const __m256i *) (s + len - 32))));
	return (uint32_t) _mm256_movemask_epi8(ok) == 0xFFFFFFFFu;
}

/* the same for len >= 16, sixteen a step (SSE2, always there on x86-64) */
static bool
cv_base64_alphabet_sse2(const char *s, size_t len)
{
	__m128i		ok = _mm_set1_epi8(-1);
	size_t		i;

	for (i = 0; i + 16 < len; i += 16)
		ok = _mm_and_si128(ok, cv_b64_in_alphabet_128(_mm_loadu_si128((const __m128i *) (s + i))));
	ok = _mm_and_si128(ok, cv_b64_in_alphabet_128(_mm_loadu_si128((const __m128i *) (s + len - 16))));
	return _mm_movemask_epi8(ok) == 0xFFFF;
}
#endif

/*
 * Whether len characters are all of the base64 alphabet (A-Z a-z 0-9 + /),
 * many at a time: no branch and no table look-up per character (this runs
 * in the cv_sealed CHECK of every protected value written).
 */
static bool
cv_base64_alphabet_only(const char *s, size_t len)
{
	uint64_t	bad = 0;
	size_t		i = 0;

#ifdef CV_B64_X86
	if (len >= 32 && cv_b64_have_avx2())
		return cv_base64_alphabet_avx2(s, len);
	if (len >= 16)
		return cv_base64_alphabet_sse2(s, len);
#endif
	for (; i + 8 <= len; i += 8)
	{
		uint64_t	x;
		uint64_t	ok;

		memcpy(&x, s + i, 8);
		/* (ASCII only first: the range tests below assume bytes below 0x80) */
		bad |= x & CV_SWAR_HIGH;
		x &= ~CV_SWAR_HIGH;
		ok = CV_SWAR_IN(x, 'A', 'Z') | CV_SWAR_IN(x, 'a', 'z') |
			CV_SWAR_IN(x, '/', '9') | CV_SWAR_IN(x, '+', '+');
		bad |= ok ^ CV_SWAR_HIGH;
	}
	for (; i < len; i++)
		bad |= (b64_reverse[(unsigned char) s[i]] < 0);
	return bad == 0;
}

/*
 * Validate the text form of an envelope without allocating: the prefix,
 * canonical base64 throughout, the length, and the header fields.  Accepts
 * exactly what cv_envelope_from_text + cv_envelope_parse accept, and gives
 * the same error as they would.  (This runs in the cv_sealed CHECK of every
 * protected value written: nothing is decoded but the header.)
 */
CvEnvError
cv_envelope_text_check(const char *src, size_t len, int expected_type)
{
	const unsigned char *b64;
	size_t		n,
				pad = 0;
	uint8_t		head[CV_ENV_HEADER_LEN];
	uint32_t	w;

	if (len < CV_ENV_TEXT_PREFIX_LEN ||
		memcmp(src, CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN) != 0)
		return CV_ENV_BAD_PREFIX;
	b64 = (const unsigned char *) src + CV_ENV_TEXT_PREFIX_LEN;
	n = len - CV_ENV_TEXT_PREFIX_LEN;
	if (n % 4 != 0)
		return CV_ENV_BAD_BASE64;
	if (n >= 1 && b64[n - 1] == '=')
		pad = (n >= 2 && b64[n - 2] == '=') ? 2 : 1;
	/*
	 * Every character but the trailing '=' is of the alphabet, so '=' can
	 * only end the last group ("xx==" or "xxx="): what is left of a canonical
	 * decoding is that the bits the padding leaves unused are zero.
	 */
	if (!cv_base64_alphabet_only((const char *) b64, n - pad))
		return CV_ENV_BAD_BASE64;
	if ((pad == 2 && (b64_reverse[b64[n - 3]] & 15) != 0) ||
		(pad == 1 && (b64_reverse[b64[n - 2]] & 3) != 0))
		return CV_ENV_BAD_BASE64;
	if ((n / 4) * 3 - pad < CV_ENV_OVERHEAD)
		return CV_ENV_TOO_SHORT;
	if ((n / 4) * 3 - pad - CV_ENV_OVERHEAD > CV_MAX_PLAINTEXT)
		return CV_ENV_TOO_LONG;
	/*
	 * The header: its 8 bytes are in the first 11 characters (all of the
	 * alphabet, as n >= 48), three bytes to four characters.
	 */
#define B64V(k) ((uint32_t) b64_reverse[b64[k]])
	w = (B64V(0) << 18) | (B64V(1) << 12) | (B64V(2) << 6) | B64V(3);
	head[0] = (uint8_t) (w >> 16);
	head[1] = (uint8_t) (w >> 8);
	head[2] = (uint8_t) w;
	w = (B64V(4) << 18) | (B64V(5) << 12) | (B64V(6) << 6) | B64V(7);
	head[3] = (uint8_t) (w >> 16);
	head[4] = (uint8_t) (w >> 8);
	head[5] = (uint8_t) w;
	w = (B64V(8) << 18) | (B64V(9) << 12) | (B64V(10) << 6);
	head[6] = (uint8_t) (w >> 16);
	head[7] = (uint8_t) (w >> 8);
#undef B64V
	return cv_envelope_header_check(head, expected_type);
}

/*
 * Seal pt into out (cv_envelope_sealed_len(pt_len, pad_to) bytes): header,
 * the given nonce, ciphertext of the (padded) plaintext, tag.  The header
 * and the context are the associated data.  Returns false on a library
 * failure or an argument out of range (out then holds no plaintext).
 */
bool
cv_envelope_seal(CvAead *aead, uint8_t *out, int type, uint32_t key_id,
				 const uint8_t nonce[CV_NONCE_LEN],
				 const uint8_t *ctx, size_t ctx_len,
				 const uint8_t *pt, size_t pt_len, unsigned pad_to)
{
	size_t		sealed_len = cv_padded_len(pt_len, pad_to);
	uint8_t    *ct = out + CV_ENV_HEADER_LEN + CV_NONCE_LEN;
	const uint8_t *src = pt;
	int			flags = 0;

	if ((type != CV_ENV_TYPE_TEXT && type != CV_ENV_TYPE_BYTEA) ||
		key_id == 0 || key_id > 0x7FFFFFFF || pad_to > CV_PAD_MAX ||
		sealed_len > CV_MAX_PLAINTEXT || sealed_len < pt_len)
		return false;
	if (ctx != NULL)
		flags |= CV_ENV_FLAG_CONTEXT;
	if (pad_to > 0)
	{
		flags |= CV_ENV_FLAG_PADDED;
		/* the padded plaintext is built in place and encrypted in place */
		if (pt_len > 0)
			memmove(ct, pt, pt_len);
		ct[pt_len] = 0x80;
		memset(ct + pt_len + 1, 0, sealed_len - pt_len - 1);
		src = ct;
	}
	cv_envelope_write_header(out, type, flags, key_id);
	memcpy(out + CV_ENV_HEADER_LEN, nonce, CV_NONCE_LEN);
	if (!cv_aead_seal(aead, out + CV_ENV_HEADER_LEN,
					  out, CV_ENV_HEADER_LEN,
					  ctx, ctx != NULL ? ctx_len : 0,
					  src, sealed_len,
					  ct, ct + sealed_len))
	{
		cv_wipe(ct, sealed_len);
		return false;
	}
	return true;
}

/*
 * Open a parsed envelope with its key into pt (env->ciphertext_len bytes)
 * and set *pt_len to the plaintext's length, padding stripped.  Returns 1
 * when authentic, 0 when not (altered, another context, a context given for
 * a value sealed without one or the reverse, malformed padding: pt is then
 * wiped), -1 on a library failure.
 */
int
cv_envelope_open(CvAead *aead, const CvEnvelope *env,
				 const uint8_t *ctx, size_t ctx_len,
				 uint8_t *pt, size_t *pt_len)
{
	size_t		n = env->ciphertext_len;
	int			rc;

	*pt_len = 0;
	if (((env->flags & CV_ENV_FLAG_CONTEXT) != 0) != (ctx != NULL))
		return 0;
	rc = cv_aead_open(aead, env->nonce, env->header, CV_ENV_HEADER_LEN,
					  ctx, ctx != NULL ? ctx_len : 0,
					  env->ciphertext, env->ciphertext_len, env->tag, pt);
	if (rc != 1)
		return rc;
	if (env->flags & CV_ENV_FLAG_PADDED)
	{
		/* strip the zeros, then exactly one 0x80 marker */
		while (n > 0 && pt[n - 1] == 0)
			n--;
		if (n == 0 || pt[n - 1] != 0x80)
		{
			cv_wipe(pt, env->ciphertext_len);
			return 0;
		}
		n--;
		cv_wipe(pt + n, env->ciphertext_len - n);
	}
	*pt_len = n;
	return 1;
}
