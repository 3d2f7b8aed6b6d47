/*
 * turnchat-bench: reads the command line, raises the fd limit, runs one
 * workload (workload.c) or the reference relay (relay_server.c), and prints
 * the figures twice: for people, and as one RESULT line of key=value fields
 * that tests/bench/run reads. Exit status 1 on any correctness error.
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const workload_names[] = {"pingpong", "flood", "idle", "connect", "storm"};
static const char *const target_names[] = {"turnchatd", "relay", "direct"};

static void usage(FILE *f)
{
	fputs("usage: turnchat-bench pingpong|flood|idle|connect|storm [options]\n"
	      "       turnchat-bench relay-server [-H host] -p port [-T seconds]\n"
	      "  -H, --host HOST         server on loopback (127.0.0.1)\n"
	      "  -p, --port PORT         its port (52928)\n"
	      "  -t, --target KIND       turnchatd, relay (relay-server), or direct: pairs\n"
	      "                          connected to each other, the generator's ceiling\n"
	      "  -P, --pairs N           pairs (100)\n"
	      "  -C, --connections N     idle and connect: connections, two per pair\n"
	      "  -d, --duration SECONDS  how long to send (5)\n"
	      "  -n, --messages N        stop sending after N messages in all (100000000)\n"
	      "  -w, --window N          flood: messages in flight per sender (64)\n"
	      "  -s, --size BYTES        message text length (32)\n"
	      "  -S, --sources N         connect from 127.0.0.2 .. 127.0.0.N+1 (16; 0: any)\n"
	      "      --setup-window N    pairs being connected at once (32)\n"
	      "      --settle SECONDS    idle: wait before reading the server's RSS; storm:\n"
	      "                          pingpong before every connection is dropped (1)\n"
	      "  -R, --resume            resumable clients: /caps resume, /ack, ACK (storm: always)\n"
	      "      --reconnect-ms MS   storm: each tries again after 0.5-1.5 x MS (200)\n"
	      "      --server-drops      storm: wait for the server to drop everyone (restart it)\n"
	      "      --tls               speak TLS (turnchatd's tls_port, or stunnel in front)\n"
	      "      --pid PID[,PID...]  the server's processes, measured as one (found by\n"
	      "                          its port otherwise)\n"
	      "  -T, --time-limit SECS   hard limit for the whole run (duration + 60)\n",
	      f);
}

static int lookup(const char *const *names, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

static bool number(const char *text, double low, double high, double *value)
{
	char *end;
	*value = strtod(text, &end);
	return end != text && *end == '\0' && *value >= low && *value <= high;
}

/* "PID[,PID...]", at most BENCH_PIDS of them. */
static bool pid_list(const char *text, struct options *opt)
{
	double v;
	char one[32];
	opt->pid_count = 0;
	for (const char *p = text; *p; p += *p == ',') {
		size_t n = strcspn(p, ",");
		if (n == 0 || n >= sizeof(one) || opt->pid_count == BENCH_PIDS)
			return false;
		memcpy(one, p, n);
		one[n] = '\0';
		if (!number(one, 1, 1e9, &v))
			return false;
		opt->pids[opt->pid_count++] = (pid_t)v;
		p += n;
	}
	return opt->pid_count > 0;
}

/* 10,000 connections need far more than the usual 1024 descriptors. */
static int raise_fd_limit(unsigned need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		fprintf(stderr,
			"turnchat-bench: need %u file descriptors, the limit is %llu "
			"(raise it with ulimit -n)\n",
			need, (unsigned long long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void report(const struct options *opt, const struct result *r)
{
	const struct histogram *h = &r->latency;
	bool connect = opt->workload == WORKLOAD_CONNECT;
	double rate = r->seconds > 0 ? (connect ? r->connections : (double)r->received) / r->seconds
				     : 0;
	double per_conn = -1, count = connect ? r->connections : (double)r->received;
	/* The server's CPU time per message (per connection for connect): the
	 * fair comparison when the generator, not the server, is the limit. */
	double cost_us = r->server_cpu >= 0 && count > 0
				 ? r->server_cpu / 100.0 * r->seconds / count * 1e6
				 : -1;
	if (r->rss_base_kib >= 0 && r->rss_kib >= 0 && r->connections > 0)
		per_conn = (double)(r->rss_kib - r->rss_base_kib) / r->connections;
	bool storm = opt->workload == WORKLOAD_STORM;

	printf("%s against %s at %s port %s%s%s: %u connections\n", workload_names[opt->workload],
	       target_names[opt->target], opt->host, opt->port, opt->tls ? " over TLS" : "",
	       opt->resume ? ", resumable clients" : "", r->connections);
	if (storm)
		printf("  every pair talking again %.3f s after the drop (server CPU %.1f us per "
		       "connection)\n",
		       r->storm_s, r->storm_cpu_us);
	if (connect)
		printf("  %.0f connections/s until paired (%.2f s)\n", rate, r->seconds);
	else
		printf("  %llu messages sent, %llu arrived, %.0f msg/s over %.2f s\n",
		       (unsigned long long)r->sent, (unsigned long long)r->received, rate,
		       r->seconds);
	printf("  %s p50 %.1f us, p99 %.1f us, max %.1f us\n",
	       connect ? "connect to PAIRED"
	       : storm ? "a pair talking again"
		       : "one-way latency",
	       us(histogram_percentile(h, 50)), us(histogram_percentile(h, 99)), us(h->max));
	printf("  server CPU %.1f%% (%.3f us per %s), bench CPU %.1f%%\n", r->server_cpu, cost_us,
	       connect ? "connection" : "message", r->bench_cpu);
	if (per_conn >= 0)
		printf("  server RSS %ld KiB -> %ld KiB: %.3f KiB per connection\n", r->rss_base_kib,
		       r->rss_kib, per_conn);
	printf("  %llu errors\n", (unsigned long long)r->errors);
	printf("RESULT workload=%s target=%s tls=%s resume=%s pairs=%u connections=%u sent=%llu "
	       "received=%llu seconds=%.3f rate=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f "
	       "server_cpu=%.1f server_us=%.3f bench_cpu=%.1f rss_base_kib=%ld rss_kib=%ld "
	       "kib_per_conn=%.3f storm_s=%.3f storm_cpu_us=%.1f errors=%llu\n",
	       workload_names[opt->workload], target_names[opt->target], opt->tls ? "yes" : "no",
	       opt->resume ? "yes" : "no", opt->pairs, r->connections, (unsigned long long)r->sent,
	       (unsigned long long)r->received, r->seconds, rate, us(histogram_percentile(h, 50)),
	       us(histogram_percentile(h, 99)), us(h->max), r->server_cpu, cost_us, r->bench_cpu,
	       r->rss_base_kib, r->rss_kib, per_conn, storm ? r->storm_s : -1,
	       storm ? r->storm_cpu_us : -1, (unsigned long long)r->errors);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"target", required_argument, NULL, 't'},
		{"pairs", required_argument, NULL, 'P'},
		{"connections", required_argument, NULL, 'C'},
		{"duration", required_argument, NULL, 'd'},
		{"messages", required_argument, NULL, 'n'},
		{"window", required_argument, NULL, 'w'},
		{"size", required_argument, NULL, 's'},
		{"sources", required_argument, NULL, 'S'},
		{"setup-window", required_argument, NULL, 'W'},
		{"settle", required_argument, NULL, 'e'},
		{"pid", required_argument, NULL, 'i'},
		{"tls", no_argument, NULL, 'L'},
		{"resume", no_argument, NULL, 'R'},
		{"reconnect-ms", required_argument, NULL, 'r'},
		{"server-drops", no_argument, NULL, 'D'},
		{"time-limit", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct options opt = {.host = "127.0.0.1",
			      .port = "52928",
			      .pairs = 100,
			      .duration = 5,
			      .max_messages = 100000000,
			      .window = 64,
			      .size = 32,
			      .sources = 16,
			      .setup_window = 32,
			      .settle = 1,
			      .reconnect_ms = 200};
	double v, time_limit = 0;
	int c;

	if (argc >= 2 && strcmp(argv[1], "relay-server") == 0)
		return relay_server_main(argc - 1, argv + 1);
	if (argc < 2 || lookup(workload_names, 5, argv[1]) < 0) {
		usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 64;
	}
	opt.workload = (enum workload)lookup(workload_names, 5, argv[1]);
	optind = 2;
	while ((c = getopt_long(argc, argv, "H:p:t:P:C:d:n:w:s:S:T:Rh", longopts, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'H':
			opt.host = optarg;
			break;
		case 'p':
			opt.port = optarg;
			break;
		case 't':
			ok = lookup(target_names, 3, optarg) >= 0;
			opt.target = (enum target)lookup(target_names, 3, optarg);
			break;
		case 'P':
			ok = number(optarg, 1, 500000, &v);
			opt.pairs = (unsigned)v;
			break;
		case 'C':
			ok = number(optarg, 2, 1000000, &v);
			opt.pairs = (unsigned)v / 2;
			break;
		case 'd':
			ok = number(optarg, 0.01, 86400, &v);
			opt.duration = v;
			break;
		case 'n':
			ok = number(optarg, 1, 1e15, &v);
			opt.max_messages = (uint64_t)v;
			break;
		case 'w':
			ok = number(optarg, 1, 100000, &v);
			opt.window = (unsigned)v;
			break;
		case 's':
			ok = number(optarg, 1, 4000, &v);
			opt.size = (unsigned)v;
			break;
		case 'S':
			ok = number(optarg, 0, 250, &v);
			opt.sources = (unsigned)v;
			break;
		case 'W':
			ok = number(optarg, 1, 100000, &v);
			opt.setup_window = (unsigned)v;
			break;
		case 'e':
			ok = number(optarg, 0, 3600, &v);
			opt.settle = v;
			break;
		case 'i':
			ok = pid_list(optarg, &opt);
			break;
		case 'L':
			opt.tls = true;
			break;
		case 'R':
			opt.resume = true;
			break;
		case 'r':
			ok = number(optarg, 0, 60000, &v);
			opt.reconnect_ms = v;
			break;
		case 'D':
			opt.server_drops = true;
			break;
		case 'T':
			ok = number(optarg, 1, 86400, &v);
			time_limit = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			ok = false;
			break;
		}
		if (!ok) {
			if (c != '?')
				fprintf(stderr, "turnchat-bench: bad value for -%c: %s\n", c, optarg);
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}
	if (opt.tls && opt.target != TARGET_TURNCHATD) {
		/* The relay and direct pairs would make two TLS clients talk to each other. */
		fprintf(stderr,
			"turnchat-bench: --tls needs -t turnchatd (or stunnel in front of it)\n");
		return 64;
	}
	if (opt.workload == WORKLOAD_STORM)
		opt.resume = true;
	if (opt.resume && opt.target != TARGET_TURNCHATD) {
		fprintf(stderr, "turnchat-bench: --resume needs -t turnchatd\n");
		return 64;
	}
	if (opt.workload == WORKLOAD_IDLE)
		opt.per_sender =
			1; /* after measuring: one message each way proves every pair alive */
	opt.time_limit = time_limit > 0 ? time_limit : opt.duration + 60;
	if (opt.workload == WORKLOAD_IDLE || opt.workload == WORKLOAD_CONNECT)
		opt.duration = opt.time_limit;
	if (raise_fd_limit(2 * opt.pairs + 64) < 0)
		return 69;
	/* A backstop: the loop stops itself at the limit, this if it ever cannot. */
	alarm((unsigned)opt.time_limit + 31);

	static struct result result;
	if (workload_run(&opt, &result) < 0)
		return 69;
	report(&opt, &result);
	return result.errors > 0 ? 1 : 0;
}
