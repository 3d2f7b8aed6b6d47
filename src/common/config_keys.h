/*
 * config_keys: the table of every setting turnchat.conf may hold: its group,
 * name, what its value must look like and where it goes in struct config.
 * Pure data for the config module, the one reader of the file; turnchat.conf(5)
 * and etc/turnchat.conf document the same keys.
 */
#ifndef TURNCHAT_CONFIG_KEYS_H
#define TURNCHAT_CONFIG_KEYS_H

#include <stddef.h>

/* A word a setting may be, and the value it stands for. */
struct word {
	const char *name;
	int value;
};

/* What a setting must look like, and so which C type its field has (apply_key in config.c). */
enum key_kind {
	KEY_HOST,
	KEY_NAME,
	KEY_NAME_OR_EMPTY,
	KEY_MODE,
	KEY_MODES,
	KEY_UNSIGNED,
	KEY_SIZE,
	KEY_LOG_TARGET, /* one of words, into an enum log_target */
	KEY_SYSLOG,     /* one of words, into an int */
	KEY_BOOL,       /* true or false, into a bool */
};

struct key {
	const char *group; /* NULL: top level */
	const char *name;
	enum key_kind kind;
	size_t offset; /* of the field in struct config */
	size_t size;   /* of the field, for strings */
	long long min, max;
	const struct word *words;
};

/* The key group.name (group NULL: top level), or NULL if there is none. */
const struct key *config_key_find(const char *group, const char *name);

#endif
