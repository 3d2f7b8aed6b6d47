/*
 * cli: called from the getopt_long loops of turnchat's and turnchatd's
 * mains, so that -V, -h and a mistyped option behave the same in both
 * (tests/e2e/test_cli.py holds both to it).
 */
#include "cli.h"

#include <sysexits.h>

#include "build_info.h"

int cli_standard_option(int opt, const char *program, cli_usage_fn *usage)
{
	switch (opt) {
	case 'V':
		printf("%s %s\n", program, TURNCHAT_VERSION);
		return 0;
	case 'h':
		usage(stdout);
		return 0;
	default:
		usage(stderr);
		return EX_USAGE;
	}
}
