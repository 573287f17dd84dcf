package ops

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// NetworkInfo is what the container engine knows of one network.
type NetworkInfo struct {
	Name   string
	Exists bool
	// Containers maps the name of each container attached to the network
	// to its IPv4 address there.
	Containers map[string]string
}

// NetworkInspector looks up a container network.
type NetworkInspector interface {
	Network(ctx context.Context, name string) (NetworkInfo, error)
}

// Dialer opens connections from the environment's host.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

const (
	chkNetwork     = "network.exists"
	chkContainerDB = "database.from_containers"
)

// builtinNetworks are the engine's own networks, always there.
var builtinNetworks = map[string]bool{"": true, "bridge": true, "host": true, "none": true, "default": true}

// networkGroup checks what fails only after the snapshot and the
// migrations otherwise: the container network exists, and the database
// URL the containers get reaches the database from that network.
func (p *Preflighter) networkGroup(env EnvFile) checkGroup {
	return checkGroup{[]string{chkNetwork, chkContainerDB}, "the container engine and the database", p.d.Timeout, func(ctx context.Context) partial {
		nw, c := p.checkNetwork(ctx)
		return partial{checks: []Check{c, p.checkContainerDB(ctx, env, nw)}}
	}}
}

func (p *Preflighter) checkNetwork(ctx context.Context) (NetworkInfo, Check) {
	e := p.d.Env
	if builtinNetworks[e.Network] {
		return NetworkInfo{Name: e.Network, Exists: true}, pass(chkNetwork, "the containers use the engine's %s network", nameOr(e.Network, "default bridge"))
	}
	nw, err := p.d.Networks.Network(ctx, e.Network)
	switch {
	case err != nil:
		return nw, fail(chkNetwork, fmt.Sprintf("the network %s cannot be inspected: %v", e.Network, err), "check the container engine")
	case !nw.Exists:
		return nw, fail(chkNetwork, fmt.Sprintf("the Docker network %s does not exist on %s's host: the new container could not be created", e.Network, e.Name),
			fmt.Sprintf("create it on the host (`docker network create %s`) and attach the database to it, or fix %s's network in the bot's configuration", e.Network, e.Name))
	}
	return nw, pass(chkNetwork, "the Docker network %s exists (%d containers attached)", e.Network, len(nw.Containers))
}

// ContainerDatabaseURL is the database URL the app's containers get: the
// env file's, replaced by ContainerEnv's when it sets the variable.
func (e Environment) ContainerDatabaseURL(env EnvFile) (string, error) {
	value := env.Value(e.DatabaseVar)
	for _, kv := range e.ContainerEnv {
		if k, _, _ := strings.Cut(kv, "="); k == e.DatabaseVar {
			expanded, err := ExpandEnv([]string{kv}, func(name string) (string, bool) {
				v, ok := env.Lookup(name)
				return v.Value, ok
			})
			if err != nil {
				return "", err
			}
			_, value, _ = strings.Cut(expanded[0], "=")
		}
	}
	return value, nil
}

func (p *Preflighter) checkContainerDB(ctx context.Context, env EnvFile, nw NetworkInfo) Check {
	e := p.d.Env
	if p.d.Migrator == nil && e.DatabaseVar == "" {
		return pass(chkContainerDB, "%s has no app database configured", e.Name)
	}
	raw, err := e.ContainerDatabaseURL(env)
	if err != nil {
		return fail(chkContainerDB, "the containers' database URL cannot be made: "+err.Error(), "add the variable to the env file, or fix container_env")
	}
	if raw == "" {
		return fail(chkContainerDB, fmt.Sprintf("the containers get no %s", e.DatabaseVar), fmt.Sprintf("set %s in %s or in container_env", e.DatabaseVar, e.EnvFile))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return warn(chkContainerDB, fmt.Sprintf("the containers' %s is not a URL with a host, so where it leads was not checked", e.DatabaseVar), "use the postgres://user:password@host:port/db form")
	}
	host, port := u.Hostname(), nameOr(u.Port(), "5432")
	from := "the " + nameOr(e.Network, "default bridge") + " network"
	remedy := fmt.Sprintf("set container_env.%s of %s to the database's address on %s, e.g. postgresql://togather:${POSTGRES_PASSWORD}@togather-db:5432/togather (the env file's URL stays the host's, for migrations and snapshots)", e.DatabaseVar, e.Name, from)
	if e.Network == "host" {
		from = "the host's network"
	} else if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return fail(chkContainerDB, fmt.Sprintf("the containers' %s points at %s: inside a container that is the container itself, so the server cannot reach its database from %s (the host can)", e.DatabaseVar, host, from), remedy)
	}
	addr := net.JoinHostPort(host, port)
	how := "from the host"
	if ip, ok := nw.Containers[host]; ok {
		addr, how = net.JoinHostPort(ip, port), fmt.Sprintf("at %s, its address on %s", ip, from)
	} else if net.ParseIP(host) == nil && !builtinNetworks[e.Network] {
		return fail(chkContainerDB, fmt.Sprintf("the containers' %s names %s, which is no container on %s", e.DatabaseVar, host, from),
			fmt.Sprintf("attach the database container to %s under that name, or %s", e.Network, remedy))
	}
	if p.d.Dialer == nil {
		return pass(chkContainerDB, "the containers' %s leads to %s (connection not tried)", e.DatabaseVar, addr)
	}
	conn, err := p.d.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(chkContainerDB, fmt.Sprintf("the containers' %s leads to %s, which does not answer %s: %v", e.DatabaseVar, addr, how, err), remedy)
	}
	conn.Close()
	return pass(chkContainerDB, "the containers' %s reaches %s (%s)", e.DatabaseVar, addr, how)
}

func nameOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}
