// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include "netns.h"
#include "steer.h"

#define FULL_MASK 0xffffffffu
#define UNREACHABLE_METRIC 0xffffffffu
/* Dump answers come in pages of up to 32 KiB (libmnl's MNL_SOCKET_DUMP_SIZE). */
#define NL_BUF_SIZE 32768

/* One netlink conversation, inside the namespace it was opened in. */
struct nl {
	struct mnl_socket *sock;
	unsigned portid, seq;
	char buf[NL_BUF_SIZE];
};

static int nl_open(struct nl *nl)
{
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID)) {
		int err = -errno;

		mnl_socket_close(nl->sock);
		return err;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)time(NULL);
	return 0;
}

/* Sends nlh and runs cb on every answer until the kernel's ACK or the dump's end. */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	int n, r;

	nlh->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(nl->buf, n, nl->seq, nl->portid, cb, data);
	} while (r > MNL_CB_STOP);
	return r < 0 ? -errno : 0;
}

/* A rule of ours: mark, priority, table, and (allow rules) a destination. */
struct rule {
	__u32 prio, fwmark, table, dst;
	__u8 dst_len;
};

/* A request in buf: its header, and the family header of size extra (returned) after it. */
static void *nl_request(char *buf, int type, int flags, size_t extra, struct nlmsghdr **nlh)
{
	*nlh = mnl_nlmsg_put_header(buf);
	(*nlh)->nlmsg_type = type;
	(*nlh)->nlmsg_flags = NLM_F_REQUEST | flags;
	return mnl_nlmsg_put_extra_header(*nlh, extra);
}

static struct nlmsghdr *rule_msg(char *buf, int type, int flags, const struct rule *r)
{
	struct nlmsghdr *nlh;
	struct fib_rule_hdr *frh = nl_request(buf, type, NLM_F_ACK | flags, sizeof(*frh), &nlh);

	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? r->table : RT_TABLE_UNSPEC;
	frh->dst_len = r->dst_len;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, r->prio);
	mnl_attr_put_u32(nlh, FRA_FWMARK, r->fwmark);
	mnl_attr_put_u32(nlh, FRA_FWMASK, FULL_MASK);
	mnl_attr_put_u32(nlh, FRA_TABLE, r->table);
	if (r->dst_len)
		mnl_attr_put_u32(nlh, FRA_DST, r->dst);
	return nlh;
}

/* Adds r; *made: it was not there (EEXIST is how the kernel says it was). */
static int rule_add(struct nl *nl, const struct rule *r, bool *made)
{
	char buf[256];
	int err = nl_talk(nl, rule_msg(buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, r), NULL, NULL);

	if (made)
		*made = !err;
	return err == -EEXIST ? 0 : err;
}

static int rule_del(struct nl *nl, const struct rule *r)
{
	char buf[256];
	int err = nl_talk(nl, rule_msg(buf, RTM_DELRULE, 0, r), NULL, NULL);

	return err == -ENOENT ? 0 : err;
}

struct rule_list {
	struct rule *rules;
	int n, max;
};

/* The u32 attributes of a message (every one this file reads), by type, up to max. */
struct u32_attrs {
	const struct nlattr **tb;
	int max;
};

static int u32_attr_cb(const struct nlattr *attr, void *data)
{
	const struct u32_attrs *a = data;
	int type = mnl_attr_get_type(attr);

	if (type <= a->max && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		a->tb[type] = attr;
	return MNL_CB_OK;
}

static int rule_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[FRA_MAX + 1] = { 0 };
	struct rule_list *l = data;
	struct rule *r;

	if (l->n >= l->max)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*frh), u32_attr_cb, &(struct u32_attrs){ tb, FRA_MAX });
	r = &l->rules[l->n++];
	r->prio = tb[FRA_PRIORITY] ? mnl_attr_get_u32(tb[FRA_PRIORITY]) : 0;
	r->fwmark = tb[FRA_FWMARK] ? mnl_attr_get_u32(tb[FRA_FWMARK]) : 0;
	r->table = tb[FRA_TABLE] ? mnl_attr_get_u32(tb[FRA_TABLE]) : frh->table;
	r->dst = tb[FRA_DST] ? mnl_attr_get_u32(tb[FRA_DST]) : 0;
	r->dst_len = frh->dst_len;
	return MNL_CB_OK;
}

/* Every IPv4 rule of the namespace, at most l->max. */
static int rule_dump(struct nl *nl, struct rule_list *l)
{
	struct nlmsghdr *nlh;
	struct fib_rule_hdr *frh = nl_request(nl->buf, RTM_GETRULE, NLM_F_DUMP, sizeof(*frh), &nlh);

	frh->family = AF_INET;
	l->n = 0;
	return nl_talk(nl, nlh, rule_dump_cb, l);
}

static bool ours(const struct rule *r, __u32 fwmark)
{
	return r->fwmark == fwmark && (r->prio == VG_RULE_PREF_ALLOW || r->prio == VG_RULE_PREF_MARK);
}

struct gateway_req {
	__u32 oif, gw;
	bool of_default;
};

static int gateway_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	struct gateway_req *req = data;
	__u32 table;

	mnl_attr_parse(nlh, sizeof(*rtm), u32_attr_cb, &(struct u32_attrs){ tb, RTA_MAX });
	table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table != RT_TABLE_MAIN || !tb[RTA_OIF] || !tb[RTA_GATEWAY] ||
	    mnl_attr_get_u32(tb[RTA_OIF]) != req->oif || (req->gw && (req->of_default || rtm->rtm_dst_len)))
		return MNL_CB_OK;
	req->gw = mnl_attr_get_u32(tb[RTA_GATEWAY]);
	req->of_default = !rtm->rtm_dst_len;
	return MNL_CB_OK;
}

/*
 * The gateway the main table reaches through the tunnel by, if it names one
 * (the default route's first): a tunnel that is an Ethernet-like device (a TAP
 * VPN) needs it; a point-to-point one (wg, tun) does without. 0: none.
 */
static int tunnel_gateway(struct nl *nl, __u32 oif, __u32 *gw)
{
	struct gateway_req req = { .oif = oif };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm = nl_request(nl->buf, RTM_GETROUTE, NLM_F_DUMP, sizeof(*rtm), &nlh);
	int err;

	rtm->rtm_family = AF_INET;
	err = nl_talk(nl, nlh, gateway_dump_cb, &req);
	*gw = req.gw;
	return err;
}

/* Default routes of table: the tunnel's (metric 0, by gw if not 0) or the unreachable one behind it. */
static int route_msg(struct nl *nl, int type, int flags, __u32 table, __u32 oif, __u32 gw)
{
	char buf[256];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm = nl_request(buf, type, NLM_F_ACK | flags, sizeof(*rtm), &nlh);

	rtm->rtm_family = AF_INET;
	rtm->rtm_table = table < 256 ? table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	if (type == RTM_DELROUTE) {
		rtm->rtm_scope = RT_SCOPE_NOWHERE; /* any: each call removes one default route */
	} else if (oif) {
		rtm->rtm_protocol = RTPROT_STATIC;
		rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
		rtm->rtm_type = RTN_UNICAST;
		mnl_attr_put_u32(nlh, RTA_OIF, oif);
		mnl_attr_put_u32(nlh, RTA_PRIORITY, 0);
		if (gw) {
			/* The main table reaches it through the tunnel: on that link, whatever table T holds. */
			rtm->rtm_flags = RTNH_F_ONLINK;
			mnl_attr_put_u32(nlh, RTA_GATEWAY, gw);
		}
	} else {
		rtm->rtm_protocol = RTPROT_STATIC;
		rtm->rtm_scope = RT_SCOPE_UNIVERSE;
		rtm->rtm_type = RTN_UNREACHABLE;
		mnl_attr_put_u32(nlh, RTA_PRIORITY, UNREACHABLE_METRIC);
	}
	return nl_talk(nl, nlh, NULL, NULL);
}

#define MAX_RULES 1024

struct apply_req {
	const struct vg_steer *s;
	bool made_mark_rule;
};

static int apply_here(void *arg)
{
	struct apply_req *req = arg;
	const struct vg_steer *s = req->s;
	struct rule mark = { VG_RULE_PREF_MARK, s->fwmark, s->table, 0, 0 };
	struct rule_list l = { .max = MAX_RULES };
	struct nl nl;
	__u32 gw = 0;
	int err;

	if ((err = nl_open(&nl)))
		return err;
	l.rules = calloc(MAX_RULES, sizeof(*l.rules));
	err = l.rules ? 0 : -ENOMEM;
	/* Routes first: a rule pointing at an empty table would send the mark on to main. */
	if (!err) {
		err = route_msg(&nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, s->table, 0, 0);
		err = err == -EEXIST ? 0 : err;
	}
	if (!err && s->tun_ifindex)
		err = tunnel_gateway(&nl, s->tun_ifindex, &gw);
	if (!err && s->tun_ifindex)
		err = route_msg(&nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, s->table,
				s->tun_ifindex, gw);
	for (int i = 0; i < s->n_allow && !err; i++) {
		struct rule r = { VG_RULE_PREF_ALLOW, s->fwmark, RT_TABLE_MAIN, s->allow[i].addr,
				  s->allow[i].len };

		err = rule_add(&nl, &r, NULL);
	}
	if (!err)
		err = rule_add(&nl, &mark, &req->made_mark_rule);
	if (!err)
		err = rule_dump(&nl, &l);
	/* Allow rules the policy no longer has. */
	for (int i = 0; i < l.n && !err; i++) {
		bool listed = false;

		if (!ours(&l.rules[i], s->fwmark) || l.rules[i].prio != VG_RULE_PREF_ALLOW)
			continue;
		for (int j = 0; j < s->n_allow && !listed; j++)
			listed = l.rules[i].dst == s->allow[j].addr && l.rules[i].dst_len == s->allow[j].len;
		if (!listed)
			err = rule_del(&nl, &l.rules[i]);
	}
	free(l.rules);
	mnl_socket_close(nl.sock);
	return err;
}

int vg_steer_apply(int netns_fd, const struct vg_steer *s, bool *made_mark_rule)
{
	struct apply_req req = { s, false };
	int err = vg_netns_run(netns_fd, apply_here, &req);

	if (made_mark_rule)
		*made_mark_rule = req.made_mark_rule;
	return err;
}

/* In the calling namespace: its rules dumped, then fn with them; everything released after. */
static int with_rules(int (*fn)(struct nl *nl, const struct rule_list *l, void *arg), void *arg)
{
	struct rule_list l = { .max = MAX_RULES };
	struct nl nl;
	int err;

	if ((err = nl_open(&nl)))
		return err;
	l.rules = calloc(MAX_RULES, sizeof(*l.rules));
	err = l.rules ? rule_dump(&nl, &l) : -ENOMEM;
	if (!err)
		err = fn(&nl, &l, arg);
	free(l.rules);
	mnl_socket_close(nl.sock);
	return err;
}

struct remove_req {
	__u32 fwmark, table;
};

static int remove_rules(struct nl *nl, const struct rule_list *l, void *arg)
{
	struct remove_req *req = arg;
	int err = 0;

	/* Rules first, so the mark never meets a table that is being emptied. */
	for (int i = 0; i < l->n && !err; i++)
		if (ours(&l->rules[i], req->fwmark))
			err = rule_del(nl, &l->rules[i]);
	/* The tunnel's route and the unreachable one; more only if someone added them. */
	for (int i = 0; i < 8 && !err; i++) {
		int r = route_msg(nl, RTM_DELROUTE, 0, req->table, 0, 0);

		if (r == -ESRCH || r == -ENOENT)
			break;
		err = r;
	}
	return err;
}

static int remove_here(void *arg)
{
	return with_rules(remove_rules, arg);
}

int vg_steer_remove(int netns_fd, __u32 fwmark, __u32 table)
{
	struct remove_req req = { fwmark, table };

	return vg_netns_run(netns_fd, remove_here, &req);
}

struct taken_req {
	__u32 fwmark, table;
	bool taken;
};

static int taken_rules(struct nl *nl, const struct rule_list *l, void *arg)
{
	struct taken_req *req = arg;

	(void)nl;
	for (int i = 0; i < l->n; i++)
		req->taken |= l->rules[i].fwmark == req->fwmark || l->rules[i].table == req->table;
	return 0;
}

static int taken_here(void *arg)
{
	return with_rules(taken_rules, arg);
}

int vg_steer_taken(int netns_fd, __u32 fwmark, __u32 table, bool *taken)
{
	struct taken_req req = { fwmark, table, false };
	int err = vg_netns_run(netns_fd, taken_here, &req);

	*taken = req.taken;
	return err;
}
