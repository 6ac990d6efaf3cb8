// The bank's page asks its own backend for Camille's chat token, as a bank's site would.
window.AttitreChat.init({ tokenProvider: () => fetch("/bank/chat-token").then((response) => response.text()) });
