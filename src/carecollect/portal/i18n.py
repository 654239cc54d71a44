"""The portal's message catalog: English and Spanish.

Templates call `t("key", name=value)`. A missing Spanish message falls back to English,
a missing key renders the key itself (visible in tests, never an exception in a page).
Other portal modules add their own messages with `register_messages` at import time.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES: tuple[str, ...] = ("en", "es")
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"

_CATALOG: dict[str, dict[str, str]] = {
    # layout
    "site.name": {"en": "Pay your bill", "es": "Pague su factura"},
    "skip": {"en": "Skip to main content", "es": "Saltar al contenido principal"},
    "language.label": {"en": "Language", "es": "Idioma"},
    "language.switch": {"en": "Change language", "es": "Cambiar idioma"},
    "nav.label": {"en": "Portal", "es": "Portal"},
    "nav.bill": {"en": "Your bill", "es": "Su factura"},
    "nav.plan": {"en": "Payment plan", "es": "Plan de pagos"},
    "nav.logout": {"en": "Sign out", "es": "Cerrar sesión"},
    "footer.private": {
        "en": "This page is private. Close it when you are done.",
        "es": "Esta página es privada. Ciérrela cuando termine.",
    },
    # titles (never PHI)
    "title.verify": {"en": "Confirm it is you", "es": "Confirme que es usted"},
    "title.invalid": {"en": "Link expired or invalid", "es": "Enlace vencido o no válido"},
    "title.bill": {"en": "Your bill", "es": "Su factura"},
    "title.pay": {"en": "Make a payment", "es": "Hacer un pago"},
    "title.receipt": {"en": "Payment receipt", "es": "Recibo de pago"},
    "title.plan": {"en": "Set up a payment plan", "es": "Crear un plan de pagos"},
    "title.plan_done": {"en": "Your payment plan", "es": "Su plan de pagos"},
    "title.signed_out": {"en": "Signed out", "es": "Sesión cerrada"},
    "title.error": {"en": "Something went wrong", "es": "Algo salió mal"},
    "title.locked": {"en": "Please try again later", "es": "Inténtelo más tarde"},
    # invalid link
    "invalid.body": {
        "en": "This link has expired or is not valid. Please use the newest message we "
        "sent you, or call the billing office for a new link.",
        "es": "Este enlace venció o no es válido. Use el mensaje más reciente que le "
        "enviamos o llame a la oficina de facturación para recibir un enlace nuevo.",
    },
    "session.expired": {
        "en": "For your privacy, your session ended. Open your payment link again to "
        "continue.",
        "es": "Por su privacidad, su sesión terminó. Abra de nuevo su enlace de pago para "
        "continuar.",
    },
    # verification
    "verify.intro": {
        "en": "To protect your information, please confirm who you are.",
        "es": "Para proteger su información, confirme quién es usted.",
    },
    "verify.last_name": {"en": "Last name", "es": "Apellido"},
    "verify.method": {"en": "Confirm with", "es": "Confirmar con"},
    "verify.dob": {"en": "Date of birth", "es": "Fecha de nacimiento"},
    "verify.dob_hint": {"en": "Month, day and year", "es": "Mes, día y año"},
    "verify.zip": {"en": "ZIP code", "es": "Código postal"},
    "verify.zip_hint": {
        "en": "The ZIP code of your mailing address",
        "es": "El código postal de su dirección postal",
    },
    "verify.or": {
        "en": "Enter your date of birth or your ZIP code.",
        "es": "Escriba su fecha de nacimiento o su código postal.",
    },
    "verify.submit": {"en": "Continue", "es": "Continuar"},
    "verify.failed": {
        "en": "We could not confirm those details. Check them and try again.",
        "es": "No pudimos confirmar esos datos. Revíselos e inténtelo de nuevo.",
    },
    "verify.incomplete": {
        "en": "Enter your last name and either your date of birth or your ZIP code.",
        "es": "Escriba su apellido y su fecha de nacimiento o su código postal.",
    },
    "verify.locked": {
        "en": "Too many tries. For your security, please wait and try again later, or "
        "call the billing office.",
        "es": "Demasiados intentos. Por su seguridad, espere e inténtelo más tarde, o "
        "llame a la oficina de facturación.",
    },
    "verify.month": {"en": "Month", "es": "Mes"},
    "verify.day": {"en": "Day", "es": "Día"},
    "verify.year": {"en": "Year", "es": "Año"},
    # bill
    "bill.intro": {
        "en": "Here is what you owe and why. Each visit is listed with what insurance "
        "paid and what is left for you to pay.",
        "es": "Esto es lo que debe y por qué. Cada visita aparece con lo que pagó el "
        "seguro y lo que le queda por pagar.",
    },
    "bill.total_due": {"en": "Total you owe", "es": "Total que debe"},
    "bill.account": {"en": "Account", "es": "Cuenta"},
    "bill.account_balance": {"en": "Balance on this account", "es": "Saldo de esta cuenta"},
    "bill.service": {"en": "Service", "es": "Servicio"},
    "bill.date": {"en": "Date", "es": "Fecha"},
    "bill.charge": {"en": "Charge", "es": "Cargo"},
    "bill.insurance_paid": {"en": "Insurance paid", "es": "Pagó el seguro"},
    "bill.adjustments": {"en": "Discounts and adjustments", "es": "Descuentos y ajustes"},
    "bill.you_paid": {"en": "You paid", "es": "Usted pagó"},
    "bill.you_owe": {"en": "You owe", "es": "Usted debe"},
    "bill.why": {"en": "Why you owe this", "es": "Por qué debe esto"},
    "bill.nothing": {
        "en": "You have nothing to pay right now. Thank you!",
        "es": "No tiene nada que pagar por ahora. ¡Gracias!",
    },
    "bill.pay_button": {"en": "Pay this account", "es": "Pagar esta cuenta"},
    "bill.plan_button": {"en": "Set up a payment plan", "es": "Crear un plan de pagos"},
    "bill.plan_active": {
        "en": "You have a payment plan on this account.",
        "es": "Tiene un plan de pagos en esta cuenta.",
    },
    "bill.plan_download": {"en": "Download the plan agreement (PDF)",
                           "es": "Descargar el acuerdo del plan (PDF)"},
    "bill.receipts": {"en": "Your payments", "es": "Sus pagos"},
    "bill.receipt_download": {"en": "Receipt (PDF)", "es": "Recibo (PDF)"},
    "why.insurance_partial": {
        "en": "Your insurance paid part of this. The rest is your share (such as a "
        "deductible, copay or coinsurance).",
        "es": "Su seguro pagó una parte. El resto es lo que le corresponde a usted (como "
        "un deducible, copago o coseguro).",
    },
    "why.no_insurance_payment": {
        "en": "We have no insurance payment on record for this service, so the amount "
        "after discounts is yours to pay. If you have insurance, please call us.",
        "es": "No tenemos un pago del seguro registrado para este servicio, así que el "
        "monto después de descuentos le corresponde a usted. Si tiene seguro, llámenos.",
    },
    "why.paid": {"en": "Paid in full. Nothing is owed.", "es": "Pagado. No debe nada."},
    # payment
    "pay.intro": {
        "en": "Pay all or part of what you owe on this account.",
        "es": "Pague todo o una parte de lo que debe en esta cuenta.",
    },
    "pay.amount": {"en": "Amount in dollars", "es": "Monto en dólares"},
    "pay.amount_hint": {"en": "For example 25.00", "es": "Por ejemplo 25.00"},
    "pay.full": {"en": "Pay in full", "es": "Pagar todo"},
    "pay.card": {"en": "Card", "es": "Tarjeta"},
    "pay.card_hint": {
        "en": "Test mode: use a test card, such as 4242 4242 4242 4242. Real card "
        "numbers are never accepted here.",
        "es": "Modo de prueba: use una tarjeta de prueba, como 4242 4242 4242 4242. Aquí "
        "nunca se aceptan números de tarjetas reales.",
    },
    "pay.submit": {"en": "Pay now", "es": "Pagar ahora"},
    "pay.declined": {
        "en": "Your card was declined. No money was taken. Try another card.",
        "es": "Su tarjeta fue rechazada. No se cobró nada. Pruebe otra tarjeta.",
    },
    "pay.unavailable": {
        "en": "We could not reach the payment service. No money was taken. Please try "
        "again in a few minutes.",
        "es": "No pudimos comunicarnos con el servicio de pagos. No se cobró nada. "
        "Inténtelo de nuevo en unos minutos.",
    },
    "pay.card_invalid": {
        "en": "Choose one of the test cards shown.",
        "es": "Elija una de las tarjetas de prueba indicadas.",
    },
    "pay.thanks": {"en": "Thank you. Your payment was received.",
                   "es": "Gracias. Recibimos su pago."},
    "receipt.number": {"en": "Receipt number", "es": "Número de recibo"},
    "receipt.date": {"en": "Date", "es": "Fecha"},
    "receipt.amount": {"en": "Amount paid", "es": "Monto pagado"},
    "receipt.method": {"en": "Paid with", "es": "Pagado con"},
    "receipt.remaining": {"en": "Remaining balance", "es": "Saldo pendiente"},
    "receipt.download": {"en": "Download receipt (PDF)", "es": "Descargar recibo (PDF)"},
    "back.bill": {"en": "Back to your bill", "es": "Volver a su factura"},
    # plans
    "plan.intro": {
        "en": "Split what you owe into monthly payments, with no interest and no fees.",
        "es": "Divida lo que debe en pagos mensuales, sin intereses ni cargos.",
    },
    "plan.choose": {"en": "Choose your monthly payments", "es": "Elija sus pagos mensuales"},
    "plan.option": {
        "en": "{count} monthly payments of about {amount}",
        "es": "{count} pagos mensuales de aproximadamente {amount}",
    },
    "plan.down_payment": {"en": "Payment due today", "es": "Pago de hoy"},
    "plan.autopay": {
        "en": "Pay each installment automatically with this card (autopay). I authorize "
        "these charges on their due dates and can cancel by calling the billing office.",
        "es": "Pagar cada cuota automáticamente con esta tarjeta (pago automático). "
        "Autorizo estos cargos en sus fechas y puedo cancelar llamando a la oficina de "
        "facturación.",
    },
    "plan.submit": {"en": "Create my plan", "es": "Crear mi plan"},
    "plan.created": {"en": "Your payment plan is set up.", "es": "Su plan de pagos está listo."},
    "plan.schedule": {"en": "Payment schedule", "es": "Calendario de pagos"},
    "plan.due": {"en": "Due", "es": "Vence"},
    "plan.amount": {"en": "Amount", "es": "Monto"},
    "plan.agreement": {"en": "Download the plan agreement (PDF)",
                       "es": "Descargar el acuerdo del plan (PDF)"},
    "plan.not_available": {
        "en": "A payment plan cannot be set up online for this account. Please call the "
        "billing office.",
        "es": "No se puede crear un plan de pagos en línea para esta cuenta. Llame a la "
        "oficina de facturación.",
    },
    "plan.choose_option": {"en": "Choose one of the plans shown.",
                           "es": "Elija uno de los planes indicados."},
    "plan.autopay_card_needed": {
        "en": "Choose a card for autopay, or leave autopay off.",
        "es": "Elija una tarjeta para el pago automático o deje el pago automático apagado.",
    },
    "plan.autopay_on": {"en": "Autopay is on.", "es": "El pago automático está activado."},
    "plan.autopay_off": {"en": "Autopay is off.", "es": "El pago automático está desactivado."},
    "amount.positive": {"en": "The amount must be more than zero.",
                        "es": "El monto debe ser mayor que cero."},
    "amount.format": {"en": "Enter an amount in dollars and cents, like 25.00.",
                      "es": "Escriba un monto en dólares y centavos, como 25.00."},
    "amount.over": {"en": "The amount is more than what is owed on this account.",
                    "es": "El monto es mayor que lo que se debe en esta cuenta."},
    "amount.nothing": {"en": "There is nothing to pay on this account.",
                       "es": "No hay nada que pagar en esta cuenta."},
    "pay.full_amount": {"en": "The full balance is {amount}.",
                        "es": "El saldo total es {amount}."},
    "pay.account": {"en": "Account ending in {label}", "es": "Cuenta que termina en {label}"},
    "plan.none_allowed": {
        "en": "No payment plan options are available for this balance.",
        "es": "No hay opciones de plan de pagos para este saldo.",
    },
    "plan.autopay_label": {"en": "Autopay", "es": "Pago automático"},
    "plan.card_for_autopay": {"en": "Card for autopay", "es": "Tarjeta para el pago automático"},
    "plan.status_label": {"en": "Status", "es": "Estado"},
    "plan.status.scheduled": {"en": "Scheduled", "es": "Programado"},
    "plan.status.paid": {"en": "Paid", "es": "Pagado"},
    "plan.status.missed": {"en": "Missed", "es": "No pagado"},
    "plan.status.cancelled": {"en": "Cancelled", "es": "Cancelado"},
    "plan.view": {"en": "See your plan", "es": "Ver su plan"},
    "plan.down_note": {
        "en": "A first payment of {amount} is due on {date}.",
        "es": "Un primer pago de {amount} vence el {date}.",
    },
    "plan.total_note": {"en": "Total: {amount}. No interest. No fees.",
                        "es": "Total: {amount}. Sin intereses. Sin cargos."},
    "pay.not_offered": {
        "en": "Online payments are not available right now. Please call the billing office.",
        "es": "Los pagos en línea no están disponibles ahora. Llame a la oficina de "
        "facturación.",
    },
    "title.returned": {"en": "Thank you", "es": "Gracias"},
    "pay.returned": {
        "en": "If you completed your payment, it will show on your bill in a few minutes.",
        "es": "Si completó su pago, aparecerá en su factura en unos minutos.",
    },
    "pay.hosted_note": {
        "en": "You will type your card on our payment processor's secure page.",
        "es": "Escribirá su tarjeta en la página segura de nuestro procesador de pagos.",
    },
    "pay.continue": {"en": "Continue to the secure payment page",
                     "es": "Continuar a la página de pago segura"},
    "pay.checkout_ready": {
        "en": "Your payment page is ready. Nothing has been charged yet.",
        "es": "Su página de pago está lista. Todavía no se ha cobrado nada.",
    },
    "receipt.status.refunded": {"en": "Refunded", "es": "Reembolsado"},
    # logout
    "logout.body": {
        "en": "You are signed out. You can close this page.",
        "es": "Cerró su sesión. Puede cerrar esta página.",
    },
    "error.body": {
        "en": "The page could not be shown. Please go back and try again.",
        "es": "No se pudo mostrar la página. Regrese e inténtelo de nuevo.",
    },
    "error.csrf": {
        "en": "This form expired. Go back, reload the page and try again.",
        "es": "Este formulario venció. Regrese, vuelva a cargar la página e inténtelo de "
        "nuevo.",
    },
    "error.not_found": {
        "en": "We could not find that. Go back to your bill.",
        "es": "No encontramos eso. Vuelva a su factura.",
    },
}


def register_messages(messages: Mapping[str, Mapping[str, str]]) -> None:
    """Add messages (key -> {language: text}); a key registered twice keeps the last."""
    for key, texts in messages.items():
        _CATALOG[key] = dict(texts)


def normalize_language(value: str | None) -> str:
    """A supported language code for `value` ("es-MX" -> "es"), else the default."""
    if not value:
        return DEFAULT_LANGUAGE
    code = value.strip().lower()[:2]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def from_accept_language(header: str | None) -> str:
    """The first supported language of an Accept-Language header (quality ignored)."""
    for part in (header or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def translate(language: str, key: str, **params: object) -> str:
    texts = _CATALOG.get(key)
    if texts is None:
        return key
    text = texts.get(language) or texts.get(DEFAULT_LANGUAGE) or key
    return text.format(**params) if params else text


def has_message(key: str) -> bool:
    return key in _CATALOG
