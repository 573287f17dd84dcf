package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
)

// Postgres creates a fresh, empty database with a unique name (t_<random>)
// on the server at localenv.AdminDSN, drops it when the test ends, and
// returns its DSN. An unreachable server is reported through Missing.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := localenv.AdminDSN()

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	conn, err := pgx.Connect(ctx, admin)
	cancel()
	if err != nil {
		Missing(t, "PostgreSQL", err)
	}
	if err := conn.Close(t.Context()); err != nil {
		t.Fatalf("close admin connection: %v", err)
	}

	name := "t_" + strings.ToLower(rand.Text())
	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dsn, err := localenv.CreateDatabase(ctx, admin, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := localenv.DropDatabase(ctx, admin, name); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// ContainerDSN is dsn as a container on Docker's default bridge reaches
// the same server: through the bridge's gateway address, where
// .ci/postgres.sh makes the server listen. A server that does not answer
// there is reported through Missing.
func ContainerDSN(t testing.TB, cli *client.Client, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nw, err := cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect Docker's bridge network: %v", err)
	}
	var gateway string
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			gateway = c.Gateway
		} else if _, subnet, err := net.ParseCIDR(c.Subnet); err == nil && subnet.IP.To4() != nil && gateway == "" {
			// Engines that leave Gateway out give the bridge the
			// subnet's first address.
			ip := subnet.IP.To4()
			gateway = net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()
		}
	}
	if gateway == "" {
		t.Fatalf("Docker's bridge network has no IPv4 gateway: %+v", nw.IPAM)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	u.Host = net.JoinHostPort(gateway, cmp.Or(u.Port(), "5432"))
	if c, err := net.DialTimeout("tcp", u.Host, 3*time.Second); err != nil {
		Missing(t, "PostgreSQL on the Docker bridge (run .ci/postgres.sh)", err)
	} else {
		c.Close()
	}
	return u.String()
}
