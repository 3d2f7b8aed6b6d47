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

/*
 * What a setting must look like in the file (apply_key in config.c). The
 * first three fill a char array; the others a number field of any integer
 * or enum type, whose width the table gives.
 */
enum key_kind {
	KEY_HOST,
	KEY_NAME,
	KEY_NAME_OR_EMPTY,
	KEY_MODE,
	KEY_MODES,
	KEY_INTEGER, /* from min to max */
	KEY_WORD,    /* one of words */
	KEY_BOOL,    /* true or false */
	KEY_PATH,    /* empty, an absolute path, or one of words */
};

struct key {
	const char *group; /* NULL: top level */
	const char *name;
	size_t offset; /* of the field in struct config */
	size_t size;   /* of the field: a string's room, a number's width */
	enum key_kind kind;
	long long min, max;
	const struct word *words;
};

/* The key group.name (group NULL: top level), or NULL if there is none. */
const struct key *config_key_find(const char *group, const char *name);

#endif
