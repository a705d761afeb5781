package domicile

import (
	"context"
	"strings"
)

// Role is what an actor is to the deployment.
type Role string

// Roles. Admin runs the deployment and reads no subject data.
const (
	RoleApp       Role = "app"
	RoleSubject   Role = "subject"
	RoleOperator  Role = "operator"
	RoleAuthority Role = "authority"
	RoleAuditor   Role = "auditor"
	RoleAdmin     Role = "admin"
	// RoleCell is a cell process speaking to another cell process (the
	// cell-to-cell migration routes); the token's Subject names the cell
	// it speaks for. ParseRole does not accept it: no admin mints one
	// through the API; a cell process mints its own in the control store
	// it opens.
	RoleCell Role = "cell"
	// RoleSystem is the service itself (re-wrapping keys, publishing
	// checkpoints); no token carries it.
	RoleSystem Role = "system"
)

// ParseRole returns the token role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleApp, RoleSubject, RoleOperator, RoleAuthority, RoleAuditor, RoleAdmin:
		return r, nil
	}
	return "", FieldErrorf("role", "must be one of app, subject, operator, authority, auditor, admin")
}

// Reason is a justification from the closed list an operator or authority
// must state.
type Reason string

// Reasons, after Key Access Justifications: free text alone is no reason.
const (
	ReasonSupport        Reason = "support"
	ReasonMaintenance    Reason = "maintenance"
	ReasonLawfulDomestic Reason = "lawful-request-domestic"
	ReasonLawfulForeign  Reason = "lawful-request-foreign"
	ReasonEmergency      Reason = "emergency"
)

// ParseJustification parses a Domicile-Justification header value: a reason
// from the closed list, a space, and a reference (e.g. "support TICKET-123").
func ParseJustification(s string) (Reason, string, error) {
	reason, ref, _ := strings.Cut(strings.TrimSpace(s), " ")
	ref = strings.TrimSpace(ref)
	switch Reason(reason) {
	case ReasonSupport, ReasonMaintenance, ReasonLawfulDomestic, ReasonLawfulForeign, ReasonEmergency:
	default:
		return "", "", FieldErrorf("Domicile-Justification", "reason must be one of support, maintenance, lawful-request-domestic, lawful-request-foreign, emergency, followed by a reference")
	}
	if ref == "" {
		return "", "", FieldErrorf("Domicile-Justification", "needs a reference after the reason, e.g. %q", "support TICKET-123")
	}
	if err := ValidateID("Domicile-Justification", ref); err != nil || len(ref) > 128 {
		return "", "", FieldErrorf("Domicile-Justification", "reference must be 1 to 128 printable bytes")
	}
	return Reason(reason), ref, nil
}

// Actor is who makes a request and on what ground.
type Actor struct {
	Role         Role         `json:"role"`
	Jurisdiction Jurisdiction `json:"jurisdiction"`
	// Subject is set for subject tokens: the only subject they reach.
	Subject string `json:"subject,omitempty"`
	// TokenID names the token (not the secret) for audit.
	TokenID string `json:"token_id,omitempty"`
	// Purpose is an app request's declared purpose.
	Purpose string `json:"purpose,omitempty"`
	// Reason and Reference justify an operator or authority request.
	Reason    Reason `json:"reason,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// Basis returns the stated ground of the request as one word: the purpose
// for an app, the reason for an operator or authority, "subject-request"
// for a subject.
func (a Actor) Basis() string {
	switch a.Role {
	case RoleApp:
		return "service:" + a.Purpose
	case RoleSubject:
		return "subject-request"
	case RoleOperator, RoleAuthority:
		return string(a.Reason)
	}
	return string(a.Role)
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}
