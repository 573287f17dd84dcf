package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Host requirement checks, in report order.
const (
	chkHostFiles     = "host.files"
	chkZeroDrop      = "host.tcp_migrate_req"
	chkDockerGroup   = "host.docker_group"
	chkDockerAPI     = "docker.api"
	chkProxyAdmin    = "proxy.admin"
	chkProxyFile     = "proxy.caddyfile"
	chkDatabaseReach = "database.reachable"
)

// EngineVersioner reports the container engine's version and the API
// version the client speaks with it.
type EngineVersioner interface {
	Version(ctx context.Context) (engine, api string, err error)
}

// AdminProxy is the proxy whose admin API answers a ping, and whose
// configuration names the live slot.
type AdminProxy interface {
	LiveSlotReader
	Ping(ctx context.Context) error
}

// HostCheckDeps is what CheckHost reads of one environment's host.
type HostCheckDeps struct {
	Env   Environment
	Files HostFiles
	// User is the account the bot uses on the host; "" is the bot's own
	// account on its own machine, whose groups are not checked.
	User        string
	Engine      EngineVersioner
	Proxy       AdminProxy
	AppDB       DatabaseSizer
	DiskFree    func(path string) (free, total uint64, err error)
	SnapshotDir string
}

// CheckHost checks what a deploy needs of an environment's host, each
// part on its own so that the first failure does not hide the others:
// its files, the zero-drop sysctl, the deploy user's docker group, the
// engine API, the proxy's admin API and Caddyfile, the snapshot disk and
// the app database. It is `host check` and `config check --connect`.
func CheckHost(ctx context.Context, d HostCheckDeps) []Check {
	checks := []Check{filesCheck(d.Files, d.Env.EnvFile), zeroDropCheck(d.Files), dockerGroupCheck(d.Files, d.User)}
	if engine, api, err := d.Engine.Version(ctx); err != nil {
		checks = append(checks, fail(chkDockerAPI, fmt.Sprintf("the Docker engine does not answer: %v", err),
			"check that Docker runs on the host and that the deploy user may use /var/run/docker.sock (docker group)"))
	} else {
		checks = append(checks, pass(chkDockerAPI, "Docker %s answers, API %s", engine, api))
	}
	if err := d.Proxy.Ping(ctx); err != nil {
		checks = append(checks, fail(chkProxyAdmin, fmt.Sprintf("Caddy's admin API does not answer: %v", err),
			"check that Caddy runs on "+d.Env.Name+"'s host with its admin API at the configured admin_url"))
	} else {
		checks = append(checks, pass(chkProxyAdmin, "Caddy's admin API answers"))
	}
	if live, _, err := d.Proxy.LiveSlot(ctx); err != nil {
		checks = append(checks, fail(chkProxyFile, fmt.Sprintf("the live slot cannot be read from the Caddyfile: %v", err),
			"check the caddyfile path and that it holds the bot's marker block"))
	} else {
		checks = append(checks, pass(chkProxyFile, "the Caddyfile names %s live", live))
	}
	disk, _, _ := diskFreeCheck(d.DiskFree, d.SnapshotDir, d.Env.Name)
	checks = append(checks, disk)
	if _, err := d.AppDB.Size(ctx); err != nil {
		checks = append(checks, fail(chkDatabaseReach, fmt.Sprintf("the app database cannot be reached: %v", err),
			"check "+d.Env.DatabaseVar+" in "+d.Env.EnvFile+" and that the database runs"))
	} else {
		checks = append(checks, pass(chkDatabaseReach, "the app database answers"))
	}
	return checks
}

// filesCheck reads the env file, the file every operation needs.
func filesCheck(files HostFiles, envFile string) Check {
	if _, err := files.ReadFile(envFile); err != nil {
		return fail(chkHostFiles, fmt.Sprintf("%s cannot be read: %v", envFile, err),
			"check the path and that the deploy user may read it (chmod 600, owned by that user)")
	}
	return pass(chkHostFiles, "%s is readable", envFile)
}

// Where the host's kernel tells its zero-drop setting and its release.
const (
	migrateReqSysctl = "/proc/sys/net/ipv4/tcp_migrate_req"
	osReleaseFile    = "/proc/sys/kernel/osrelease"
)

// zeroDropCheck warns when the host's kernel resets the connections
// queued on a listener that Caddy closes while loading a configuration
// (ADR 0009): net.ipv4.tcp_migrate_req must be 1.
func zeroDropCheck(files HostFiles) Check {
	const persist = "sysctl -w net.ipv4.tcp_migrate_req=1 && echo net.ipv4.tcp_migrate_req=1 > /etc/sysctl.d/60-togather.conf"
	data, err := files.ReadFile(migrateReqSysctl)
	switch v := strings.TrimSpace(string(data)); {
	case errors.Is(err, fs.ErrNotExist):
		release, _ := files.ReadFile(osReleaseFile)
		return warn(chkZeroDrop, fmt.Sprintf("the kernel (%s) has no net.ipv4.tcp_migrate_req: switches may reset a few connections", kernelRelease(release)),
			"run the host on Linux 5.14 or newer, then: "+persist)
	case err != nil:
		return warn(chkZeroDrop, fmt.Sprintf("net.ipv4.tcp_migrate_req cannot be read: %v", err), "check it on the host: sysctl net.ipv4.tcp_migrate_req")
	case v == "1":
		return pass(chkZeroDrop, "net.ipv4.tcp_migrate_req=1: a switch drops no queued connection")
	default:
		return warn(chkZeroDrop, fmt.Sprintf("net.ipv4.tcp_migrate_req=%s: a switch can reset the connections queued at Caddy's config load", v),
			"on the host, as root: "+persist)
	}
}

func kernelRelease(b []byte) string {
	if r := strings.TrimSpace(string(b)); r != "" {
		return "Linux " + r
	}
	return "release unknown"
}

// dockerGroupCheck warns when the deploy user is not in the docker group,
// the provisioning's way of letting it use the engine's socket.
func dockerGroupCheck(files HostFiles, user string) Check {
	switch user {
	case "":
		return pass(chkDockerGroup, "the host is the bot's own machine, used with the bot's own rights")
	case "root":
		return pass(chkDockerGroup, "the deploy user is root")
	}
	data, err := files.ReadFile("/etc/group")
	if err != nil {
		return warn(chkDockerGroup, fmt.Sprintf("/etc/group cannot be read: %v", err), "check on the host: id "+user)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 4 || f[0] != "docker" {
			continue
		}
		for m := range strings.SplitSeq(f[3], ",") {
			if strings.TrimSpace(m) == user {
				return pass(chkDockerGroup, "%s is in the docker group", user)
			}
		}
		return warn(chkDockerGroup, user+" is not in the docker group", "on the host, as root: usermod -aG docker "+user)
	}
	return warn(chkDockerGroup, "the host has no docker group", "install Docker on the host, then: usermod -aG docker "+user)
}
