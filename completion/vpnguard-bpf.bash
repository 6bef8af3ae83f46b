# SPDX-License-Identifier: GPL-2.0
# bash completion for vpnguard-bpf(8). The commands and each command's options come from the
# binary's own --help (the usage is the grammar), read once per binary; values are completed
# from the machine: cgroup directories under the cgroup v2 mount, interfaces, containers from
# the engine when it answers within a second, guard names from the config, files.

# The usage of binary $1, as three tables: the options of each command, the options that take a
# value, the options of a command that may be repeated ("[--allow CIDR]..." or given twice).
_vpnguard_bpf_read_usage()
{
	local line cmd="" before opt next rest repeated='^[^][ ]*\]\.\.\.'
	declare -gA _vpnguard_bpf_opts=() _vpnguard_bpf_valued=() _vpnguard_bpf_repeat=()
	_vpnguard_bpf_cmds=""
	_vpnguard_bpf_bin=$1
	while IFS= read -r line; do
		if [[ $line =~ ^[[:space:]]*vpnguard-bpf[[:space:]]+([a-z]+) ]]; then
			cmd=${BASH_REMATCH[1]}
			_vpnguard_bpf_cmds+=" $cmd"
		elif [[ $line =~ ^[[:space:]]*vpnguard-bpf[[:space:]]+- ]]; then
			cmd=""  # "--help | --version": no command's options
		fi
		[[ -n $cmd ]] || continue
		rest=$line
		while [[ $rest =~ (.?)(--[a-z][a-z-]*)(.*) ]]; do
			before=${BASH_REMATCH[1]}
			opt=${BASH_REMATCH[2]}
			rest=${BASH_REMATCH[3]}
			next=${rest# }
			[[ $rest == " "[A-Za-z]* ]] && _vpnguard_bpf_valued[$opt]=1
			# "--cgroup PATH [--cgroup PATH]..." repeats; "--http A | --http B" is a choice.
			if [[ " ${_vpnguard_bpf_opts[$cmd]} " == *" $opt "* ]]; then
				[[ $before == "[" ]] && _vpnguard_bpf_repeat[$cmd $opt]=1
			else
				_vpnguard_bpf_opts[$cmd]+=" $opt"
			fi
			[[ $next =~ $repeated ]] && _vpnguard_bpf_repeat[$cmd $opt]=1
		done
	done < <("$1" --help 2>/dev/null)
}

# The cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid layout.
_vpnguard_bpf_cgroup2()
{
	local dev dir type rest
	while read -r dev dir type rest; do
		[[ $type == cgroup2 ]] && { printf '%s\n' "$dir"; return; }
	done </proc/self/mounts
}

# Directories below the cgroup v2 mount (the root cgroup itself is refused by attach): full
# paths, or paths below the mount when the word is one ("vpnguard.slice/...").
_vpnguard_bpf_cgroups()
{
	local cur=$1 mnt d rel=""
	mnt=$(_vpnguard_bpf_cgroup2)
	[[ -n $mnt ]] || return
	if [[ -n $cur && $cur != /* ]]; then
		rel=$mnt/
		cur=$mnt/$cur
	fi
	[[ $cur == "$mnt"/* ]] || cur=$mnt/
	compopt -o filenames 2>/dev/null
	while IFS= read -r d; do
		[[ $d == "$mnt"/?* ]] && COMPREPLY+=("${d#"$rel"}")
	done < <(compgen -d -- "$cur")
}

# Running containers' names, when docker is installed and its engine answers at once.
_vpnguard_bpf_containers()
{
	local cur=$1 host=$2 name
	type -P docker >/dev/null || return
	while IFS= read -r name; do
		[[ $name == "$cur"* ]] && COMPREPLY+=("$name")
	done < <(timeout 1 docker ${host:+-H "$host"} ps --format '{{.Names}}' 2>/dev/null)
}

# The [guard NAME] sections of the config (--config on the line, else _vpnguard_bpf_config, else
# /etc/vpnguard/vpnguard.conf), when it can be read: it is root's, mode 0600.
_vpnguard_bpf_guards()
{
	local cur=$1 conf=$2 line
	[[ -r $conf ]] || return
	while IFS= read -r line; do
		[[ $line =~ ^\[guard\ +([^]]+)\] && ${BASH_REMATCH[1]} == "$cur"* ]] &&
			COMPREPLY+=("${BASH_REMATCH[1]}")
	done <"$conf"
}

_vpnguard_bpf_files()
{
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

_vpnguard_bpf()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev="" bin cmd i opt w host=""
	local conf=${_vpnguard_bpf_config:-/etc/vpnguard/vpnguard.conf}
	local -A given=()
	COMPREPLY=()
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

	bin=${COMP_WORDS[0]}
	[[ $bin == */* ]] || bin=$(type -P "$bin" || type -P /usr/sbin/vpnguard-bpf)
	[[ -x $bin ]] || return
	[[ $bin == "${_vpnguard_bpf_bin-}" ]] || _vpnguard_bpf_read_usage "$bin"

	if ((COMP_CWORD == 1)); then
		mapfile -t COMPREPLY < <(compgen -W "$_vpnguard_bpf_cmds --help --version" -- "$cur")
		return
	fi
	cmd=${COMP_WORDS[1]}
	[[ -n ${_vpnguard_bpf_opts[$cmd]-} ]] || return

	# What the line gives already: options, the engine's socket, the config file.
	for ((i = 2; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[[ -n ${_vpnguard_bpf_valued[$w]-} ]] || { given[$w]=1; continue; }
		given[$w]=1
		((i + 1 < COMP_CWORD)) || continue
		[[ $w == --docker-host ]] && host=${COMP_WORDS[i + 1]}
		[[ $w == --config ]] && conf=${COMP_WORDS[i + 1]}
		((i++))
	done

	if [[ -n ${_vpnguard_bpf_valued[$prev]-} && " ${_vpnguard_bpf_opts[$cmd]} " == *" $prev "* ]]; then
		case $prev in
		--cgroup) _vpnguard_bpf_cgroups "$cur" ;;
		--tunnel)
			mapfile -t COMPREPLY < <(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur") ;;
		--netns)
			_vpnguard_bpf_files "${cur:-/run/netns/}" ;;
		--on-closed)
			mapfile -t COMPREPLY < <(compgen -W "pause stop none" -- "$cur") ;;
		--container | --tunnel-container) _vpnguard_bpf_containers "$cur" "$host" ;;
		--check) _vpnguard_bpf_guards "$cur" "$conf" ;;
		--docker-host)
			mapfile -t COMPREPLY < <(compgen -W "unix:///var/run/docker.sock" -- "$cur") ;;
		--config | --log | --probe-ca) _vpnguard_bpf_files "$cur" ;;
		esac
		return
	fi

	for opt in ${_vpnguard_bpf_opts[$cmd]} --help; do
		[[ -n ${given[$opt]-} && -z ${_vpnguard_bpf_repeat[$cmd $opt]-} ]] && continue
		[[ $opt == "$cur"* ]] && COMPREPLY+=("$opt")
	done
}

complete -F _vpnguard_bpf vpnguard-bpf
