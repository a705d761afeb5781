package keyd

// ExamplePolicy is a commented starting policy, written by `domicile keyd init`.
// Adapt the cells, purposes and hours to the deployment.
const ExamplePolicy = `# domicile keyd policy.
#
# Clauses are tried in order; the first whose matchers all match decides.
# If no clause matches, the unwrap is denied. Matchers left out match anything:
#   roles:         app subject operator authority auditor admin system
#   reasons:       service:<purpose> (or service:* for any app purpose),
#                  support maintenance lawful-request-domestic
#                  lawful-request-foreign emergency subject-request rewrap
#   reference_required: true  (a ticket or legal reference must be given)
#   cells:         cell ids (the client certificate must name the same cell)
#   jurisdictions: where the actor acts from (ISO 3166-1 alpha-2)
#   not_before / not_after: RFC 3339 instants
#   hours: "HH:MM-HH:MM" daily, in timezone (IANA name, default UTC)

# Key operations the cells may request from this custodian.
key_admin: [rotate]

clauses:
  - name: no-foreign-lawful-requests
    effect: deny
    reasons: [lawful-request-foreign]

  - name: app-services
    effect: allow
    roles: [app]
    reasons: ["service:*"]

  - name: subject-self-service
    effect: allow
    roles: [subject]
    reasons: [subject-request]

  - name: operator-support-office-hours
    effect: allow
    roles: [operator]
    reasons: [support, maintenance]
    reference_required: true
    hours: "09:00-18:00"
    timezone: Asia/Shanghai

  - name: lawful-domestic-with-reference
    effect: allow
    roles: [authority]
    reasons: [lawful-request-domestic]
    reference_required: true

  - name: system-rewrap
    effect: allow
    roles: [system]
    reasons: [rewrap]
`
