/*
 * cli: the options both programs answer alike, -V/--version, -h/--help and
 * an unknown one, for the mains of turnchat (client/turnchat.c) and
 * turnchatd (daemon/turnchatd.c). Each keeps its own usage text.
 */
#ifndef TURNCHAT_CLI_H
#define TURNCHAT_CLI_H

#include <getopt.h>
#include <stdio.h>

/* Those options, for the end of a program's getopt_long tables, so that the
 * letters listed and the letters answered are the same; with -c/--config
 * FILE, which both take (both read turnchat.conf) and each acts on. */
#define CLI_SHORT_OPTIONS "Vhc:"
/* clang-format would take these braces for a block. */
/* clang-format off */
#define CLI_LONG_OPTIONS {"config", required_argument, NULL, 'c'}, \
	{"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}
/* clang-format on */

/* Prints a program's usage to out. */
typedef void cli_usage_fn(FILE *out);

/*
 * For the default: arm of a getopt_long switch. 'V' prints "program
 * version" and 'h' the usage, on stdout, and return 0; anything else
 * (getopt_long already said what was wrong) prints the usage on stderr and
 * returns EX_USAGE. The caller exits with what it returns.
 */
int cli_standard_option(int opt, const char *program, cli_usage_fn *usage);

#endif
