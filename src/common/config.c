/*
 * config: reads turnchat.conf (libconfig syntax) into struct config.
 * turnchatd calls it once at start-up; turnchat calls it once per layer.
 * Every setting is matched against the table of known keys (config_keys.c),
 * so a typo, a wrong type or an out-of-range value is reported with its line
 * instead of being ignored, and all problems come out in one run. The only
 * includer of libconfig.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libconfig.h>

#include "config.h"
#include "config_keys.h"

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define QUOTE_MAX 56
#define LIST_MAX 128

/* One file being read: where errors go and how many there were. */
struct loader {
	const struct config_text *text; /* to say which file and line a setting is on */
	config_report_fn *report;
	void *ctx;
	int errors;
};

static void PRINTF_LIKE(3, 4) emit(config_report_fn *report, void *ctx, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!report)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	report(ctx, line);
}

/*
 * "file:line: group.key: message". A list element has no name of its own:
 * it is reported at its own line under its list's name.
 */
static void PRINTF_LIKE(3, 4)
	complain(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const config_setting_t *named = config_setting_name(s) ? s : config_setting_parent(s);
	const config_setting_t *parent = config_setting_parent(named);
	const char *file;
	unsigned line;
	char message[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	ld->errors++;
	config_text_where(ld->text, config_setting_source_line(s), &file, &line);
	emit(ld->report, ld->ctx, "%s:%u: %s%s%s: %s", file, line,
	     parent && !config_setting_is_root(parent) ? config_setting_name(parent) : "",
	     parent && !config_setting_is_root(parent) ? "." : "", config_setting_name(named),
	     message);
}

/* Echoes a bad value back safely: it may hold control bytes or be huge. */
static const char *quote(const char *text, char out[QUOTE_MAX])
{
	size_t n = 0;

	out[n++] = '"';
	for (; *text && n < QUOTE_MAX - 6; text++)
		out[n++] = (unsigned char)*text < ' ' || *text == 0x7f ? '?' : *text;
	strcpy(out + n, *text ? "...\"" : "\"");
	return out;
}

static const char *type_name(const config_setting_t *s)
{
	static const char *const names[] = {
		[CONFIG_TYPE_GROUP] = "a group",    [CONFIG_TYPE_INT] = "an integer",
		[CONFIG_TYPE_INT64] = "an integer", [CONFIG_TYPE_FLOAT] = "a float",
		[CONFIG_TYPE_STRING] = "a string",  [CONFIG_TYPE_BOOL] = "a boolean",
		[CONFIG_TYPE_ARRAY] = "an array",   [CONFIG_TYPE_LIST] = "a list",
	};

	return names[config_setting_type(s)];
}

static void list_add(char list[LIST_MAX], const char *name)
{
	if (list[0])
		strcat(list, ", ");
	strcat(list, name);
}

/* "turns, free" for the modes in the bit set; messages list what is allowed. */
static const char *mode_list(unsigned modes, char out[LIST_MAX])
{
	out[0] = '\0';
	for (int m = 0; m < CHAT_MODE_COUNT; m++) {
		if (modes & (1u << m))
			list_add(out, protocol_mode_name((enum chat_mode)m));
	}
	return out;
}

static const char *string_value(struct loader *ld, const config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return config_setting_get_string(s);
	complain(ld, s, "expected a string, found %s", type_name(s));
	return NULL;
}

/* true or false, as 1 or 0 for store_number. */
static bool bool_value(struct loader *ld, const config_setting_t *s, long long *value)
{
	if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
		*value = config_setting_get_bool(s) != 0;
		return true;
	}
	complain(ld, s, "expected true or false, found %s", type_name(s));
	return false;
}

/* False, said, when text holds a byte below lowest or DEL. */
static bool clean(struct loader *ld, const config_setting_t *s, const char *text,
		  unsigned char lowest, const char *what)
{
	char q[QUOTE_MAX];

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p < lowest || *p == 0x7f) {
			complain(ld, s, "%s contains %s", quote(text, q), what);
			return false;
		}
	}
	return true;
}

static bool host_ok(struct loader *ld, const config_setting_t *s, const char *host)
{
	if (host[0] == '\0' || strlen(host) > CONFIG_HOST_MAX) {
		complain(ld, s, "must be 1 to %d bytes long", CONFIG_HOST_MAX);
		return false;
	}
	return clean(ld, s, host, '!', "whitespace or a control character");
}

static bool name_ok(struct loader *ld, const config_setting_t *s, const char *name, bool may_be_empty)
{
	char q[QUOTE_MAX];

	if (protocol_valid_name(name, strlen(name)) || (may_be_empty && name[0] == '\0'))
		return true;
	complain(ld, s, "%s is not a valid name (1 to %d letters, digits, _ . or -)", quote(name, q),
		 PROTOCOL_NAME_MAX);
	return false;
}

/* Empty (none), an absolute path, or one of the key's words ("system"). */
static bool path_ok(struct loader *ld, const struct key *key, const config_setting_t *s,
		    const char *path)
{
	char q[QUOTE_MAX];

	for (const struct word *w = key->words; w && w->name; w++)
		if (strcmp(w->name, path) == 0)
			return true;
	if (strlen(path) >= key->size) {
		complain(ld, s, "must be at most %zu bytes long", key->size - 1);
		return false;
	}
	if (!clean(ld, s, path, ' ', "a control character"))
		return false;
	if (path[0] != '\0' && path[0] != '/') {
		complain(ld, s, "%s is not an absolute path%s", quote(path, q),
			 key->words ? " or \"system\"" : "");
		return false;
	}
	return true;
}

static bool mode_value(struct loader *ld, const config_setting_t *s, const char *text,
		       long long *value)
{
	char q[QUOTE_MAX], list[LIST_MAX];
	enum chat_mode mode;

	if (protocol_parse_mode(text, strlen(text), &mode)) {
		*value = mode;
		return true;
	}
	complain(ld, s, "%s is not a mode (%s)", quote(text, q),
		 mode_list((1u << CHAT_MODE_COUNT) - 1, list));
	return false;
}

/* Checks every element, so one run reports each bad one. */
static bool modes_value(struct loader *ld, const config_setting_t *s, long long *modes)
{
	int errors = ld->errors;
	char q[QUOTE_MAX];

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		complain(ld, s, "expected a list of modes like [\"turns\", \"free\"], found %s",
			 type_name(s));
		return false;
	}
	if (config_setting_length(s) == 0)
		complain(ld, s, "must name at least one mode");
	*modes = 0;
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *elem = config_setting_get_elem(s, (unsigned)i);
		long long mode;

		if (config_setting_type(elem) != CONFIG_TYPE_STRING)
			complain(ld, elem, "element %d is %s, not a string", i + 1, type_name(elem));
		else if (!mode_value(ld, elem, config_setting_get_string(elem), &mode))
			continue;
		else if (*modes & (1ll << mode))
			complain(ld, elem, "%s is listed twice",
				 quote(config_setting_get_string(elem), q));
		else
			*modes |= 1ll << mode;
	}
	return ld->errors == errors;
}

static bool integer_value(struct loader *ld, const struct key *key, const config_setting_t *s,
			  long long *value)
{
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		complain(ld, s, "expected an integer, found %s", type_name(s));
		return false;
	}
	*value = config_setting_get_int64(s);
	if (*value < key->min || *value > key->max) {
		complain(ld, s, "%lld is out of range (%lld..%lld)", *value, key->min, key->max);
		return false;
	}
	return true;
}

static bool word_value(struct loader *ld, const struct key *key, const config_setting_t *s,
		       long long *value)
{
	const char *text = string_value(ld, s);
	char q[QUOTE_MAX], list[LIST_MAX] = "";

	if (!text)
		return false;
	for (const struct word *w = key->words; w->name; w++) {
		if (strcmp(w->name, text) == 0) {
			*value = w->value;
			return true;
		}
		list_add(list, w->name);
	}
	complain(ld, s, "%s is not one of %s", quote(text, q), list);
	return false;
}

/*
 * A number field is unsigned, size_t, int or an enum. Only its width
 * matters: every value was checked first, and none is negative or too
 * wide for its field (the table's ranges see to that).
 */
static void store_number(void *field, size_t width, long long value)
{
	assert(value >= 0);
	if (width == sizeof(bool)) {
		bool yes = value != 0;
		assert(value <= 1);
		memcpy(field, &yes, sizeof(yes));
	} else if (width == sizeof(uint32_t)) {
		uint32_t narrow = (uint32_t)value;
		assert(narrow == (unsigned long long)value);
		memcpy(field, &narrow, sizeof(narrow));
	} else {
		uint64_t wide = (uint64_t)value;
		assert(width == sizeof(wide));
		memcpy(field, &wide, sizeof(wide));
	}
}

/* Reads a setting into its field; a bad value leaves the field alone. */
static void apply_key(struct loader *ld, const struct key *key, const config_setting_t *s,
		      struct config *cfg)
{
	void *field = (char *)cfg + key->offset;
	const char *text;
	long long number;
	bool ok = false;

	switch (key->kind) {
	case KEY_HOST:
		if ((text = string_value(ld, s)) && host_ok(ld, s, text))
			strncpy(field, text, key->size); /* zero-fills, so memcmp works */
		return;
	case KEY_NAME:
	case KEY_NAME_OR_EMPTY:
		if ((text = string_value(ld, s)) &&
		    name_ok(ld, s, text, key->kind == KEY_NAME_OR_EMPTY))
			strncpy(field, text, key->size);
		return;
	case KEY_PATH:
		if ((text = string_value(ld, s)) && path_ok(ld, key, s, text))
			strncpy(field, text, key->size);
		return;
	case KEY_MODE:
		ok = (text = string_value(ld, s)) && mode_value(ld, s, text, &number);
		break;
	case KEY_MODES:
		ok = modes_value(ld, s, &number);
		break;
	case KEY_INTEGER:
		ok = integer_value(ld, key, s, &number);
		break;
	case KEY_WORD:
		ok = word_value(ld, key, s, &number);
		break;
	case KEY_BOOL:
		ok = bool_value(ld, s, &number);
		break;
	}
	if (ok)
		store_number(field, key->size, number);
}

static void apply_settings(struct loader *ld, const config_setting_t *group, const char *group_name,
			   struct config *cfg)
{
	const config_setting_t *s;

	for (unsigned i = 0; (s = config_setting_get_elem(group, i)) != NULL; i++) {
		const char *name = config_setting_name(s);
		const struct key *key;

		if (!group_name && (strcmp(name, "server") == 0 || strcmp(name, "client") == 0)) {
			if (config_setting_is_group(s))
				apply_settings(ld, s, name, cfg);
			else
				complain(ld, s, "expected a group { ... }, found %s", type_name(s));
		} else if ((key = config_key_find(group_name, name)) != NULL) {
			apply_key(ld, key, s, cfg);
		} else {
			complain(ld, s, "unknown setting");
		}
	}
}

int config_load_file(struct config *cfg, const char *path, bool must_exist, config_report_fn *report,
		     void *ctx)
{
	struct config_text text;
	struct loader ld = {&text, report, ctx, 0};
	struct config work;
	bool missing;
	config_t lc;

	/* libconfig gets a string, never a file: see config_file.h for why. */
	ld.errors = config_text_read(&text, path, must_exist, &missing, report, ctx);
	if (ld.errors > 0 || missing) {
		config_text_free(&text);
		return ld.errors;
	}
	config_init(&lc);
	/* Belt and braces: were an @include left for libconfig to open, it
	 * would look under a directory that does not exist. */
	config_set_include_dir(&lc, "/nonexistent/turnchat-reads-includes-itself");
	if (!config_read_string(&lc, text.text)) {
		/* Parsing stops at the first syntax error; later ones may be echoes. */
		const char *file;
		unsigned line;

		config_text_where(&text, (unsigned)config_error_line(&lc), &file, &line);
		emit(report, ctx, "%s:%u: %s", file, line, config_error_text(&lc));
		ld.errors = 1;
	} else {
		/* Work on a copy so that a file with any error changes nothing. */
		memcpy(&work, cfg, sizeof(work));
		apply_settings(&ld, config_root_setting(&lc), NULL, &work);
		if (ld.errors == 0)
			memcpy(cfg, &work, sizeof(*cfg));
	}
	config_destroy(&lc);
	config_text_free(&text);
	return ld.errors;
}

int config_check(const struct config *cfg, const char *origin, config_report_fn *report, void *ctx)
{
	enum chat_mode mode = cfg->server.default_mode;
	char list[LIST_MAX];
	int errors = 0;

	/* Each is valid alone, but they may come from different layers. */
	if ((unsigned)mode >= CHAT_MODE_COUNT || !(cfg->server.modes & (1u << mode))) {
		emit(report, ctx, "%s: server.default_mode \"%s\" is not in server.modes (%s)",
		     origin, (unsigned)mode < CHAT_MODE_COUNT ? protocol_mode_name(mode) : "?",
		     mode_list(cfg->server.modes, list));
		errors++;
	}
	/* A full line, with its keyword, must always fit in a queue. */
	if (cfg->server.max_queue < 2 * cfg->server.max_line + 64) {
		emit(report, ctx,
		     "%s: server.max_queue %zu is too small for server.max_line %zu "
		     "(at least twice as large)",
		     origin, cfg->server.max_queue, cfg->server.max_line);
		errors++;
	}
	/* Sockets from systemd or inetd are told apart by their port. */
	if (cfg->server.tls_certificate[0] && cfg->server.tls_key[0] && cfg->port == cfg->tls_port) {
		emit(report, ctx, "%s: tls_port %u is also port: TLS needs a port of its own", origin,
		     cfg->tls_port);
		errors++;
	}
	return errors;
}
