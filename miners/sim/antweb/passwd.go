package antweb

import (
	"encoding/json"
	"net/http"
)

// RefusePasswordChanges makes passwd.cgi refuse every change with reason ("" accepts them again).
func (m *Miner) RefusePasswordChanges(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refusePasswd = reason
}

// Password is the miner's current web password.
func (m *Miner) Password() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pass
}

// passwd is passwd.cgi: {"current_passwd", "new_passwd", "new_passwd_ctrl"}. The new password is in force
// for the next request; the current one must be given again, as stock firmware asks.
func (m *Miner) passwd(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Current string `json:"current_passwd"`
		New     string `json:"new_passwd"`
		Ctrl    string `json:"new_passwd_ctrl"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		refuse(w, r, http.StatusBadRequest, "P001", "body must be {current_passwd, new_passwd, new_passwd_ctrl}")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case in.Current != m.pass:
		refuse(w, r, http.StatusOK, "P002", "current password is wrong")
	case in.New == "" || len(in.New) > 64 || in.New != in.Ctrl:
		refuse(w, r, http.StatusOK, "P003", "new password empty, longer than 64 bytes, or not confirmed")
	case m.refusePasswd != "":
		refuse(w, r, http.StatusOK, "P004", m.refusePasswd)
	default:
		m.pass = in.New
		clear(m.nonces)
		stats(w, http.StatusOK, "success", "P000", "password changed")
	}
}
