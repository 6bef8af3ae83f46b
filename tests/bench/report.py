#!/usr/bin/env python3
"""Medians of `make bench`: tests/bench/results.json and the Markdown table.

Reads the samples run.sh wrote, one figure of one run per line:
WORKLOAD <tab> CONFIG <tab> KEY <tab> VALUE, in the order the runs happened.
"""
import argparse
import datetime
import json
import statistics
import sys

CONFIGS = ("none", "nft", "vpnguard")


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            workload, config, key, value = line.rstrip("\n").split("\t")
            runs.setdefault((workload, key), {}).setdefault(config, []).append(float(value))
    return runs


def per_config(runs, workload, key):
    """{config: median or None} for one figure, and "overhead": {nft, vpnguard} (see overhead)."""
    got = runs.get((workload, key), {})
    m = {c: (statistics.median(got[c]) if got.get(c) else None) for c in CONFIGS}
    return dict(m, overhead=overhead(got))


def overhead(got):
    """{config: the median over the rounds of config − none in the same round}, nft and vpnguard.

    The configurations take turns within a round, so a round's differences see the machine as it
    was for all three; a VM whose host gets busier or quieter during the run (seen here: every
    figure 50% higher for the first half of the rounds) moves the medians of the columns, each
    by where its own samples fall, but not the differences of a round.
    """
    out = {}
    for c in ("nft", "vpnguard"):
        pairs = [v - n for v, n in zip(got.get(c, []), got.get("none", []))]
        out[c] = statistics.median(pairs) if pairs else None
    return out


def samples(runs, workload, key):
    return {c: runs.get((workload, key), {}).get(c, []) for c in CONFIGS}


def headline(unit, medians, **extra):
    return dict(unit=unit, **medians, **extra)


def build(runs, args):
    w = {}
    w["udp_sendto"] = headline(
        "ns/call", per_config(runs, "udp_sendto", "ns"),
        samples=samples(runs, "udp_sendto", "ns"),
        failed_calls=per_config(runs, "udp_sendto", "failed"))
    tcp = per_config(runs, "connect_tcp", "ns")
    w["connect"] = headline(
        "ns/conn", tcp,
        headline="tcp",
        tcp=tcp, udp=per_config(runs, "connect_udp", "ns"),
        samples={"tcp": samples(runs, "connect_tcp", "ns"),
                 "udp": samples(runs, "connect_udp", "ns")},
        failed_conns={"tcp": per_config(runs, "connect_tcp", "failed"),
                      "udp": per_config(runs, "connect_udp", "failed")})
    w["tcp_bulk"] = headline(
        "Gbit/s", per_config(runs, "tcp_bulk", "gbps"),
        cpu_ns_per_kib=per_config(runs, "tcp_bulk", "cpu_ns_per_kib"),
        samples=samples(runs, "tcp_bulk", "gbps"))

    storm = {k: samples(runs, "deny_storm", k)["vpnguard"]
             for k in ("denied", "counted", "events_written", "events_suppressed", "events_lost")}
    runs_v = list(zip(storm["denied"], storm["counted"], storm["events_written"],
                      storm["events_suppressed"], storm["events_lost"]))
    w["deny_storm"] = headline(
        "ns/call", per_config(runs, "deny_storm", "ns"),
        attempts=per_config(runs, "deny_storm", "attempts"),
        denied=per_config(runs, "deny_storm", "denied"),
        counted=per_config(runs, "deny_storm", "counted")["vpnguard"],
        # Exact in every run: the per-reason counters moved by the number of EPERM answers.
        counter_exact=bool(runs_v) and all(d == c for d, c, *_ in runs_v),
        # Every denial is in the log, or counted as suppressed (rate limit) or lost.
        events_accounted=bool(runs_v) and all(d == e + s + l for d, _, e, s, l in runs_v),
        events_written=per_config(runs, "deny_storm", "events_written")["vpnguard"],
        events_suppressed=per_config(runs, "deny_storm", "events_suppressed")["vpnguard"],
        events_dropped=per_config(runs, "deny_storm", "events_lost")["vpnguard"],
        agent_cpu_pct=per_config(runs, "agent_footprint", "cpu_storm_pct")["vpnguard"])
    leak = samples(runs, "leak_window", "packets")
    w["leak_window"] = headline(
        "packets", per_config(runs, "leak_window", "packets"),
        max={c: (max(v) if v else None) for c, v in leak.items()},
        samples=leak,
        through_tunnel_before=per_config(runs, "leak_window", "tunnel_before"))
    fp = {k: per_config(runs, "agent_footprint", k)["vpnguard"]
          for k in ("rss_kb", "rss_storm_kb", "cpu_idle_pct", "cpu_storm_pct",
                    "wakeups_idle", "idle_seconds")}
    w["agent_footprint"] = dict(unit="kB RSS", none=None, nft=None, vpnguard=fp.pop("rss_kb"), **fp)
    return {
        "bpf_programs": prog_costs(runs),
        "bpf_program_sizes": prog_sizes(runs),
        "helpers": load_helpers(args.helpers),
        "kernel": args.kernel,
        "clocksource": args.clocksource,
        "mitigations": args.mitigations,
        "date": args.date,
        "machine": args.machine,
        "load_average_at_start": args.load,
        "command": "make bench",
        "rounds": args.rounds,
        "workloads": w,
    }


PROG_COST_UNITS = (("udp_sendto", "call"), ("connect_udp", "connection"),
                   ("connect_tcp", "connection"), ("tcp_bulk", "MiB"))


def prog_costs(runs):
    """{workload: {"per": unit, "programs": {program: {runs_per_op, ns_per_run, ns_per_op}},
    "floor": the same for the floor's programs}} from the bpf_stats runs (prog_costs.sh)."""
    out = {}
    for workload, per in PROG_COST_UNITS:
        got = {cfg: programs_of(runs, cfg, workload) for cfg in ("vpnguard", "floor")}
        if got["vpnguard"]:
            out[workload] = dict(per=per, programs=got["vpnguard"], floor=got["floor"])
    return out


def programs_of(runs, cfg, workload):
    """{program: {runs_per_op, ns_per_run, ns_per_op}} of one configuration's bpf_stats run."""
    got = {key: v[cfg][-1] for (w, key), v in runs.items() if w == "prog_cost" and v.get(cfg)}
    ops = got.get("tcp_bulk.mib", 0) if workload == "tcp_bulk" else 1
    progs = {}
    for key, v in got.items():
        parts = key.split(".")
        if parts[0] != workload or parts[-1] != "runs_per_op" or not ops:
            continue
        r = v / ops
        ns = got.get(f"{workload}.{parts[1]}.ns_per_run", 0)
        progs[parts[1]] = dict(runs_per_op=r, ns_per_run=ns, ns_per_op=r * ns)
    return progs


SIZE_FIELDS = ("verified_insns", "xlated_insns", "jited_bytes")


def prog_sizes(runs):
    """{config: {program: {verified_insns, xlated_insns, jited_bytes}}} (prog_costs.sh)."""
    out = {}
    for (w, key), v in runs.items():
        name, _, field = key.rpartition(".")
        if w != "prog_size" or field not in SIZE_FIELDS:
            continue
        for cfg, values in v.items():
            out.setdefault(cfg, {}).setdefault(name, {})[field] = int(values[-1])
    return out


def prog_size_lines(sizes):
    if not sizes:
        return []
    lines = ["What each program is: the instructions the verifier walked (every path, so more "
             "than any one run executes), the instructions it left after its rewrites, and the "
             "JIT's bytes:", "",
             "| configuration | program | verified insns | xlated insns | JIT bytes |",
             "| --- | --- | ---: | ---: | ---: |"]
    for cfg, progs in sizes.items():
        for name, p in sorted(progs.items()):
            lines.append(f"| {cfg} | {name} | " +
                         " | ".join(str(p.get(f, "–")) for f in SIZE_FIELDS) + " |")
    return lines + [""]


def all_programs(progs):
    return sum(p["ns_per_op"] for p in progs.values())


def load_helpers(path):
    """tests/bench/helpers.c's figures: {"ns_per_call": {operation: ns}}, or None."""
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# On refresh only (at most every VG_FACTS_TTL_NS per CPU), not on the per-call path: the
# policy's hash lookup among them (judged options of setsockopt() and tc read it too).
REFRESH_ONLY = ("hash_lookup_u64", "ktime_get_boot_ns", "ktime_get_ns", "hash_lookup_tunnel_key",
                "devmap_hash_lookup", "percpu_hash_lookup_counter", "get_current_pid_tgid")
# Not in the programs at all: what the same lookup costs in other kinds of map, and what the
# socket storage and socket cookie the programs once used cost, to compare.
COMPARE_ONLY = ("array_lookup", "percpu_array_lookup", "sk_storage_get", "sk_storage_get_create",
                "sk_fullsock", "get_socket_cookie")


def helper_lines(h):
    if not h:
        return []
    ns, cold = h["ns_per_call"], h.get("cold_ns_per_call", {})
    lines = ["One helper call or map access in isolation (BPF_PROG_TEST_RUN): warm, "
             f"{h['loops']} in a loop (the median of 9 trials); cold, one per system call as a "
             "hook makes it (the mean of the middle half of 2001 calls; a negative figure is "
             "within the noise of the empty program it is measured against, whose cold run "
             f"takes {h.get('cold_empty_run_ns', 0):.0f} ns with the clock reads that time it):", "",
             "| helper or map access | on the per-call path | ns per call, warm | ns per call, cold |",
             "| --- | --- | ---: | ---: |"]
    for name, v in ns.items():
        where = ("no (refresh, denial)" if name in REFRESH_ONLY else
                 "no (to compare)" if name in COMPARE_ONLY else "yes")
        c = f"{cold[name]:.1f}" if name in cold else "–"
        lines.append(f"| `{name}` | {where} | {v:.1f} | {c} |")
    skip = REFRESH_ONLY + COMPARE_ONLY
    lines.append("")
    for label, figures, leave_out in (("warm", ns, skip), ("cold", cold, skip)):
        hot = {k: v for k, v in figures.items() if k not in leave_out}
        worst = max(hot, key=hot.get) if hot else None
        if worst:
            lines += [f"- no helper call on the per-call path above 30 ns ({label}): the dearest is "
                      f"`{worst}`, {hot[worst]:.1f} ns: {verdict(hot[worst] <= 30)}"]
    return lines + [""]


def prog_cost_lines(costs):
    if not costs:
        return []
    lines = ["The programs' own time (one run of each workload with `kernel.bpf_stats_enabled`, "
             "which itself adds two clock reads to each run), and the floor's: a program that "
             "allows everything at each of the same hooks (tests/bench/empty.bpf.c), the "
             "kernel's own path into a program:", "",
             "| workload | program | runs per op | ns per run | ns per op |",
             "| --- | --- | ---: | ---: | ---: |"]
    for workload, c in costs.items():
        for name, p in sorted(c["programs"].items()) + sorted(c["floor"].items()):
            lines.append(f"| {workload} | {name} | {p['runs_per_op']:.2f} | {p['ns_per_run']:.0f} | "
                         f"{p['ns_per_op']:.0f} |")
        lines.append(f"| {workload} | **all of vpnguard's**, per {c['per']} | | | "
                     f"**{all_programs(c['programs']):.0f}** |")
        if c["floor"]:
            lines.append(f"| {workload} | **all of the floor's**, per {c['per']} | | | "
                         f"**{all_programs(c['floor']):.0f}** |")
    return lines + [""]


def floor_note(r, workload):
    """What the floor's programs took per operation, for a goal's line ("" if not measured)."""
    c = (r.get("bpf_programs") or {}).get(workload)
    if not c or not c["floor"]:
        return ""
    return f" (the floor's programs alone: {all_programs(c['floor']):.0f} ns)"


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}".replace(",", " ")


def cells(m, digits=0):
    """none | nft | vpnguard, each with its ratio to none."""
    out = [fmt(m["none"], digits)]
    for c in ("nft", "vpnguard"):
        s = fmt(m[c], digits)
        if m[c] is not None and m["none"]:
            s += f" ({m[c] / m['none']:.3f}×)"
        out.append(s)
    return out


def delta(m, c, digits=0):
    if m["overhead"][c] is None:
        return "–"
    return f"{m['overhead'][c]:+,.{digits}f}".replace(",", " ")


def ratio_to_nft(m, higher_is_worse=True):
    """vpnguard's overhead as a multiple of nft's, in the same run ("–" when nft costs nothing)."""
    if any(m["overhead"][c] is None for c in ("nft", "vpnguard")):
        return "–"
    sign = 1 if higher_is_worse else -1
    nft_o, vg_o = sign * m["overhead"]["nft"], sign * m["overhead"]["vpnguard"]
    if nft_o <= 0:
        return "– (nft ≤ 0)"
    return f"{vg_o / nft_o:.2f}×"


def verdict(ok):
    return "met" if ok else "**missed**"


def markdown(r):
    w = r["workloads"]
    rows = [
        ("1. UDP `sendto`, 100 B to 4096 destinations", "ns/call", w["udp_sendto"], 0),
        ("2. UDP `socket`+`connect`+`close`", "ns/conn", dict(w["connect"]["udp"]), 0),
        ("2. TCP `socket`+`connect`+`close`", "ns/conn", dict(w["connect"]["tcp"]), 0),
        ("3. TCP bulk (iperf3)", "Gbit/s", w["tcp_bulk"], 2),
        ("3. TCP bulk, sender CPU", "ns/KiB", dict(w["tcp_bulk"]["cpu_ns_per_kib"]), 1),
        ("4. denied-attempt storm", "ns/call", w["deny_storm"], 0),
        ("5. leak window: packets on the fallback path", "packets", w["leak_window"], 0),
    ]
    a = w["agent_footprint"]
    s = w["deny_storm"]
    lines = [
        f"`make bench` on {r['date']}: kernel {r['kernel']}, {r['machine']}, "
        f"clocksource {r['clocksource']}, {r['mitigations']}, "
        f"load average {r['load_average_at_start']} at the start. "
        f"Medians of {r['rounds']} rounds (workloads 1–2 / 3 / 4 / 5); "
        "the ratio to none in brackets; the − none columns are medians of each round's "
        "difference (the configurations take turns within a round).",
        "",
        "| workload | unit | none | nft | vpnguard | nft − none | vpnguard − none | ÷ nft's |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, unit, m, d in rows:
        worse_up = unit not in ("Gbit/s",)
        cmp = ratio_to_nft(m, worse_up) if name[0] in "123" else ""
        lines.append(f"| {name} | {unit} | " + " | ".join(cells(m, d)) +
                     f" | {delta(m, 'nft', d)} | {delta(m, 'vpnguard', d)} | {cmp} |")
    lines.append(f"| 6. agent RSS idle / under the storm | kB | – | – | "
                 f"{fmt(a['vpnguard'])} / {fmt(a['rss_storm_kb'])} | | |")
    lines.append(f"| 6. agent CPU idle / under the storm | % | – | – | "
                 f"{fmt(a['cpu_idle_pct'], 3)} / {fmt(a['cpu_storm_pct'], 3)} | | |")
    lines.append(f"| 6. agent wake-ups while idle ({fmt(a['idle_seconds'])} s) | count | – | – | "
                 f"{fmt(a['wakeups_idle'])} | | |")
    lines += [
        "",
        f"Storm (vpnguard, median run): {fmt(s['denied']['vpnguard'])} denied attempts, "
        f"counters {'exact in every run' if s['counter_exact'] else '**NOT exact**'}; "
        f"events written {fmt(s['events_written'])}, suppressed by the rate limit "
        f"{fmt(s['events_suppressed'])}, dropped {fmt(s['events_dropped'])}"
        f"{'' if s['events_accounted'] else ' (**some denials unaccounted for**)'}.",
        "",
    ]
    lines += prog_cost_lines(r.get("bpf_programs"))
    lines += prog_size_lines(r.get("bpf_program_sizes"))
    lines += helper_lines(r.get("helpers"))
    u, c, b, lk = w["udp_sendto"], w["connect"], w["tcp_bulk"], w["leak_window"]
    if None not in u["overhead"].values():
        nft_o, vg_o = u["overhead"]["nft"], u["overhead"]["vpnguard"]
        lines.append(f"- UDP `sendto` overhead at most half nft's: "
                     f"vpnguard {vg_o:+.0f} ns, nft {nft_o:+.0f} ns{floor_note(r, 'udp_sendto')}: "
                     f"{verdict(vg_o <= nft_o / 2)}")
    pairs = [v / n for v, n in zip(b["samples"]["vpnguard"], b["samples"]["none"]) if n]
    if pairs:
        kept = 100 * statistics.median(pairs)  # of each round's, like the overheads
        lines.append(f"- TCP bulk at least 99% of none: {kept:.1f}% (rounds from "
                     f"{100 * min(pairs):.1f}% to {100 * max(pairs):.1f}%): {verdict(kept >= 99)}")
    for p in ("udp", "tcp"):
        m = c[p]
        if None not in m["overhead"].values():
            nft_o, vg_o = m["overhead"]["nft"], m["overhead"]["vpnguard"]
            lines.append(f"- {p.upper()} `connect()` overhead at most nft's: vpnguard {vg_o:+.0f} ns, "
                         f"nft {nft_o:+.0f} ns{floor_note(r, 'connect_' + p)}: "
                         f"{verdict(vg_o <= nft_o)}")
    if lk["max"]["vpnguard"] is not None:
        lines.append(f"- zero packets on the fallback path: vpnguard {fmt(lk['max']['vpnguard'])} "
                     f"in the worst round (nft {fmt(lk['max']['nft'])}, none {fmt(lk['max']['none'])}): "
                     f"{verdict(lk['max']['vpnguard'] == 0)}")
    if a["vpnguard"] is not None:
        # The agent's one periodic timer (lease renewal, scan) ticks every 30 s at the default
        # interval: a window of S seconds holds S // 30 of its ticks, or one more by its phase.
        ticks = int(a["idle_seconds"] // 30) + 1
        lines.append(f"- agent idle: {fmt(a['wakeups_idle'])} wake-ups in {fmt(a['idle_seconds'])} s "
                     f"(at most {ticks} from its lease timer, every 30 s), RSS {a['vpnguard'] / 1024:.1f} MB: "
                     f"{verdict(a['wakeups_idle'] <= ticks and a['vpnguard'] < 10 * 1024)}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("samples")
    ap.add_argument("json_out")
    ap.add_argument("md_out")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--rounds", required=True)
    ap.add_argument("--clocksource", default="?")
    ap.add_argument("--mitigations", default="?")
    ap.add_argument("--helpers", help="tests/bench/helpers.c's --json output")
    ap.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc)
                    .strftime("%Y-%m-%d %H:%M UTC"))
    args = ap.parse_args()
    r = build(load(args.samples), args)
    with open(args.json_out, "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    with open(args.md_out, "w") as f:
        f.write(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
