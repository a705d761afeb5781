package httpapi

import (
	"bytes"
	"context"
	"domicile/client"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"domicile/transfer"
)

// PutMechanism registers or replaces a mechanism (admin).
func (c *Client) PutMechanism(ctx context.Context, m transfer.Mechanism) (*transfer.MechanismView, error) {
	var out transfer.MechanismView
	_, err := c.Call(ctx, http.MethodPut, "/v1/mechanisms/"+seg(m.ID), m, &out)
	return &out, err
}

// Mechanisms lists the registry (admin or auditor).
func (c *Client) Mechanisms(ctx context.Context) ([]transfer.MechanismView, error) {
	var out MechanismList
	_, err := c.Call(ctx, http.MethodGet, "/v1/mechanisms", nil, &out)
	return out.Mechanisms, err
}

// Mechanism returns one registered mechanism.
func (c *Client) Mechanism(ctx context.Context, id string) (*transfer.MechanismView, error) {
	var out transfer.MechanismView
	_, err := c.Call(ctx, http.MethodGet, "/v1/mechanisms/"+seg(id), nil, &out)
	return &out, err
}

// TransferRefusedError is a refused transfer, with the gate's decision.
type TransferRefusedError struct {
	*client.ProblemError
	Decision *transfer.Decision
}

// DecideTransfer asks for a decision without carrying the transfer out.
func (c *Client) DecideTransfer(ctx context.Context, r transfer.Request) (*transfer.Decision, error) {
	var out transfer.Decision
	_, err := c.Call(ctx, http.MethodPost, "/v1/transfers", TransferRequest{Request: r, DryRun: true}, &out)
	return &out, err
}

// Transfer carries out a transfer and returns its decision and the
// bundle's stream, which the caller reads and closes. A refusal is a
// *TransferRefusedError.
func (c *Client) Transfer(ctx context.Context, r transfer.Request) (*transfer.Decision, io.ReadCloser, error) {
	b, err := json.Marshal(TransferRequest{Request: r})
	if err != nil {
		return nil, nil, err
	}
	req, err := c.NewRequest(ctx, http.MethodPost, "/v1/transfers", bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		var tp TransferProblem
		if json.Unmarshal(body, &tp) == nil && tp.Decision != nil {
			return tp.Decision, nil, &TransferRefusedError{ProblemError: &client.ProblemError{Problem: tp.Problem}, Decision: tp.Decision}
		}
		var p client.Problem
		if json.Unmarshal(body, &p) != nil || p.Status == 0 {
			p = client.Problem{Status: resp.StatusCode, Code: "http", Detail: string(body)}
		}
		return nil, nil, &client.ProblemError{Problem: p}
	}
	var d transfer.Decision
	raw, err := base64.RawURLEncoding.DecodeString(resp.Header.Get(HeaderTransferDecision))
	if err != nil || json.Unmarshal(raw, &d) != nil {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("transfer: answer lacks its decision header")
	}
	return &d, resp.Body, nil
}

// ImportTransfers uploads a CSV of earlier transfers (admin); source is
// the jurisdiction the data left (CN by default).
func (c *Client) ImportTransfers(ctx context.Context, source string, csv io.Reader) (*transfer.ImportResult, error) {
	q := url.Values{}
	if source != "" {
		q.Set("source", source)
	}
	req, err := c.NewRequest(ctx, http.MethodPost, "/v1/transfers/import?"+q.Encode(), csv)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/csv")
	var out transfer.ImportResult
	_, err = c.Do(req, &out)
	return &out, err
}

// Ledger returns a year's counts (0: the current year).
func (c *Client) Ledger(ctx context.Context, year int) (*transfer.LedgerView, error) {
	path := "/v1/transfers/ledger"
	if year != 0 {
		path += "?year=" + strconv.Itoa(year)
	}
	var out transfer.LedgerView
	_, err := c.Call(ctx, http.MethodGet, path, nil, &out)
	return &out, err
}
