/*
 * display: used by the client's chat module before any text reaches the
 * terminal.
 */
#include "display.h"

#include <stdint.h>
#include <stdio.h>

#include "utf8.h"

int display_sanitize(struct buffer *out, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; i < len;) {
		uint32_t c = 0;
		size_t n = utf8_decode(s + i, len - i, &c);
		char escaped[16];
		int rc;

		if (n == 0) {
			snprintf(escaped, sizeof(escaped), "\\x%02X", s[i]);
			rc = buffer_append(out, escaped, 4);
			n = 1;
		} else if (utf8_is_control(c) && c < 0x80) {
			escaped[0] = '^';
			escaped[1] = (char)(c ^ 0x40); /* ESC -> ^[, DEL -> ^? */
			rc = buffer_append(out, escaped, 2);
		} else if (utf8_is_control(c)) {
			int w = snprintf(escaped, sizeof(escaped), "<U+%04X>", (unsigned)c);
			rc = buffer_append(out, escaped, (size_t)w);
		} else {
			rc = buffer_append(out, s + i, n);
		}
		if (rc < 0)
			return -1;
		i += n;
	}
	return 0;
}
