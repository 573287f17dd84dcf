package ops

import (
	"fmt"
	"strings"
	"time"
)

// RefusedDeploy is the deploy of r.Version that requester asked for and
// the pre-flight report r refused, as an operation that failed at once: its
// journal says who asked and which checks failed, so the environment's
// history shows the refusal. The caller stores it with Journal.Create;
// nothing was changed.
func RefusedDeploy(r Report, requester, reason string, chat map[string]string, at time.Time) Operation {
	failing := make([]string, 0, len(r.Blocking()))
	for _, c := range r.Blocking() {
		failing = append(failing, c.Name+": "+c.Message)
	}
	why := "refused by pre-flight: " + strings.Join(failing, "; ")
	return Operation{ID: NewOpID(KindDeploy, at), Kind: KindDeploy, Env: r.Env, Requester: requester, Reason: reason,
		State: StepFailed, Version: r.Version, Image: r.Image, ImageID: r.ImageID, Error: why,
		CreatedAt: at, UpdatedAt: at, Chat: chat,
		Journal: []JournalEntry{
			{At: at, Step: StepRequested, Phase: PhaseNote, Detail: fmt.Sprintf("deploy of %s to %s requested by %s", r.Version, r.Env, requester)},
			{At: at, Step: StepFailed, Phase: PhaseEnd, Detail: why + "; nothing was changed"},
		}}
}
