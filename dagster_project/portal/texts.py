"""The download page's words, in Brazilian Portuguese (the default) and English."""

from __future__ import annotations

LANGUAGES = ("pt-BR", "en")

TEXTS: dict[str, dict[str, str]] = {
    "pt-BR": {
        "title": "customer360 — arquivos de segmentos",
        "log_in": "Entrar",
        "name": "Usuário",
        "password": "Senha",
        "refused": "Usuário ou senha incorretos.",
        "locked": "Conta bloqueada após tentativas erradas. Tente de novo mais tarde ou peça o desbloqueio.",
        "expired": "Sua sessão expirou. Entre de novo.",
        "forbidden": "Você não tem acesso a este arquivo.",
        "not_found": "Arquivo não encontrado entre as entregas aprovadas.",
        "changed": "O arquivo mudou desde a entrega e não será enviado. Avise a equipe de dados.",
        "bad_form": "O formulário expirou. Recarregue a página e tente de novo.",
        "log_out": "Sair",
        "signed_in_as": "Conectado como",
        "deliveries": "Entregas",
        "as_of": "Data de referência",
        "created_at": "Gerada em",
        "gates": "verificações de qualidade aprovadas",
        "segment": "Segmento",
        "channel": "Canal",
        "rows": "Linhas",
        "opted_out": "Removidos (opt-out)",
        "checksum": "SHA-256",
        "download": "Baixar",
        "none": "Nenhum arquivo disponível para você.",
        "language": "English",
    },
    "en": {
        "title": "customer360 — segment files",
        "log_in": "Log in",
        "name": "User name",
        "password": "Password",
        "refused": "Wrong user name or password.",
        "locked": "Account locked after failed attempts. Try again later or ask for it to be unlocked.",
        "expired": "Your session expired. Please log in again.",
        "forbidden": "You may not download this file.",
        "not_found": "No such file among the passed deliveries.",
        "changed": "The file changed since it was delivered and will not be sent. Tell the data team.",
        "bad_form": "The form expired. Reload the page and try again.",
        "log_out": "Log out",
        "signed_in_as": "Signed in as",
        "deliveries": "Deliveries",
        "as_of": "As of",
        "created_at": "Created at",
        "gates": "quality checks passed",
        "segment": "Segment",
        "channel": "Channel",
        "rows": "Rows",
        "opted_out": "Removed (opted out)",
        "checksum": "SHA-256",
        "download": "Download",
        "none": "No file available to you.",
        "language": "Português",
    },
}


def language_of(cookie: str | None, accept_language: str | None) -> str:
    """The language a visitor chose (cookie), else the first of their browser's we have, else pt-BR."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("pt"):
            return "pt-BR"
        if tag.startswith("en"):
            return "en"
    return "pt-BR"
