package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Role grants commands in environments to Slack users and user groups,
// always by ID, never by name.
type Role struct {
	Name         string
	Users        []string // user IDs
	Groups       []string // user-group IDs
	Commands     []string // permission names; "*" for all, "x.*" for every sub of x
	Environments []string // environment names; "*" for all
}

// GroupResolver lists the members of a user group.
type GroupResolver interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Authorizer decides who may run what, where. Deny by default.
type Authorizer struct {
	roles  []Role
	groups GroupResolver
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]groupEntry
}

type groupEntry struct {
	members []string
	fetched time.Time
}

// NewAuthorizer returns an Authorizer over roles, resolving group membership
// through groups and caching it for ttl.
func NewAuthorizer(roles []Role, groups GroupResolver, ttl time.Duration, now func() time.Time) *Authorizer {
	if now == nil {
		now = time.Now
	}
	return &Authorizer{roles: roles, groups: groups, ttl: ttl, now: now, cache: map[string]groupEntry{}}
}

// Decide reports whether user may use permission in env (env is empty for
// commands that are not about one environment) and, when refused, why.
func (a *Authorizer) Decide(ctx context.Context, user, permission, env string) (bool, string) {
	var groupErr error
	for _, r := range a.roles {
		if !matchPermission(r.Commands, permission) || !matchEnv(r.Environments, env) {
			continue
		}
		ok, err := a.member(ctx, r, user)
		if err != nil {
			groupErr = err
			continue
		}
		if ok {
			return true, ""
		}
	}
	if groupErr != nil {
		return false, fmt.Sprintf("your group membership could not be checked (%v); try again in a minute", groupErr)
	}
	where := ""
	if env != "" {
		where = " in " + env
	}
	return false, fmt.Sprintf("you are not allowed to run %s%s: no role grants it to you. Ask an admin to add your user or group to a role.", permission, where)
}

// Permitted reports whether user may use permission in at least one
// environment; help uses it to list what the caller may run.
func (a *Authorizer) Permitted(ctx context.Context, user, permission string) bool {
	for _, r := range a.roles {
		if !matchPermission(r.Commands, permission) {
			continue
		}
		if ok, err := a.member(ctx, r, user); err == nil && ok {
			return true
		}
	}
	return false
}

func (a *Authorizer) member(ctx context.Context, r Role, user string) (bool, error) {
	if slices.Contains(r.Users, user) {
		return true, nil
	}
	var lastErr error
	for _, g := range r.Groups {
		members, err := a.groupMembers(ctx, g)
		if err != nil {
			lastErr = err
			continue
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, lastErr
}

// groupMembers returns the cached members of a group, refreshing them after
// the TTL. When a refresh fails a stale list is still used: a Slack hiccup
// at 3 a.m. must not lock the on-call engineer out.
func (a *Authorizer) groupMembers(ctx context.Context, group string) ([]string, error) {
	a.mu.Lock()
	e, ok := a.cache[group]
	a.mu.Unlock()
	if ok && a.now().Sub(e.fetched) < a.ttl {
		return e.members, nil
	}
	if a.groups == nil {
		return nil, fmt.Errorf("no group resolver configured for %s", group)
	}
	members, err := a.groups.GroupMembers(ctx, group)
	if err != nil {
		if ok {
			return e.members, nil
		}
		return nil, fmt.Errorf("members of %s: %w", group, err)
	}
	a.mu.Lock()
	a.cache[group] = groupEntry{members: members, fetched: a.now()}
	a.mu.Unlock()
	return members, nil
}

func matchPermission(patterns []string, permission string) bool {
	for _, p := range patterns {
		switch {
		case p == "*" || p == permission:
			return true
		case strings.HasSuffix(p, ".*"):
			base := strings.TrimSuffix(p, ".*")
			if permission == base || strings.HasPrefix(permission, base+".") {
				return true
			}
		}
	}
	return false
}

func matchEnv(envs []string, env string) bool {
	if env == "" {
		return true
	}
	return slices.Contains(envs, "*") || slices.Contains(envs, env)
}
