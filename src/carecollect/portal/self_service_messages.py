"""The self-service pages' messages (English and Spanish), registered into the portal
catalog by `self_service_endpoints`, and the map from service error messages to keys.
Titles never carry PHI."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "title.self.preferences": {"en": "How we contact you", "es": "Cómo nos comunicamos"},
    "title.self.dispute": {"en": "Question a charge", "es": "Reclamar un cargo"},
    "title.self.help": {"en": "Ask for financial help", "es": "Pedir ayuda financiera"},
    "title.self.done_dispute": {"en": "Dispute received", "es": "Reclamo recibido"},
    "title.self.done_help": {"en": "Request received", "es": "Solicitud recibida"},
    "title.self.access_log": {"en": "Who saw your record", "es": "Quién vio su expediente"},
    "nav.self.preferences": {"en": "Contact preferences", "es": "Preferencias de contacto"},
    "nav.self.dispute": {"en": "Question a charge", "es": "Reclamar un cargo"},
    "nav.self.help": {"en": "Financial help", "es": "Ayuda financiera"},
    "nav.self.access_log": {"en": "Access log", "es": "Registro de acceso"},
    "nav.self.label": {"en": "More options", "es": "Más opciones"},
    # preferences
    "prefs.intro": {
        "en": "Choose how and when we may contact you about your bill. Letters by mail "
        "continue so that you always get your statements.",
        "es": "Elija cómo y cuándo podemos comunicarnos con usted sobre su factura. Las "
        "cartas por correo continúan para que siempre reciba sus estados de cuenta.",
    },
    "prefs.channels": {"en": "Ways we may contact you", "es": "Formas de comunicarnos"},
    "prefs.medium.email": {"en": "E-mail", "es": "Correo electrónico"},
    "prefs.medium.sms": {"en": "Text messages", "es": "Mensajes de texto"},
    "prefs.medium.call": {"en": "Phone calls", "es": "Llamadas telefónicas"},
    "prefs.on_file": {"en": "On file: {value}", "es": "Registrado: {value}"},
    "prefs.none_on_file": {
        "en": "We have nothing on file for this. Call the billing office to add it.",
        "es": "No tenemos este dato. Llame a la oficina de facturación para agregarlo.",
    },
    "prefs.best_time": {"en": "Best time to reach you", "es": "Mejor hora para comunicarnos"},
    "prefs.best_time_hint": {
        "en": "Your local time, like 09:00 and 17:00. We will not call, text or e-mail "
        "outside this time. Leave both empty for no preference.",
        "es": "Su hora local, como 09:00 y 17:00. No llamaremos, ni enviaremos textos o "
        "correos fuera de este horario. Deje ambos vacíos si no tiene preferencia.",
    },
    "prefs.from": {"en": "From", "es": "Desde"},
    "prefs.to": {"en": "To", "es": "Hasta"},
    "prefs.avoid_days": {"en": "Days not to contact you", "es": "Días en que no debemos "
                         "comunicarnos"},
    "prefs.language": {"en": "Language for our messages", "es": "Idioma de nuestros mensajes"},
    "prefs.save": {"en": "Save my choices", "es": "Guardar mis preferencias"},
    "prefs.saved": {"en": "Your choices are saved.", "es": "Sus preferencias se guardaron."},
    "day.mon": {"en": "Monday", "es": "Lunes"},
    "day.tue": {"en": "Tuesday", "es": "Martes"},
    "day.wed": {"en": "Wednesday", "es": "Miércoles"},
    "day.thu": {"en": "Thursday", "es": "Jueves"},
    "day.fri": {"en": "Friday", "es": "Viernes"},
    "day.sat": {"en": "Saturday", "es": "Sábado"},
    "day.sun": {"en": "Sunday", "es": "Domingo"},
    # dispute
    "dispute.intro": {
        "en": "If a charge looks wrong, tell us. While we review it, we will not contact "
        "you to collect this account, and someone from the billing office will get back "
        "to you.",
        "es": "Si un cargo parece incorrecto, díganos. Mientras lo revisamos, no nos "
        "comunicaremos con usted para cobrar esta cuenta, y alguien de la oficina de "
        "facturación le responderá.",
    },
    "dispute.charge": {"en": "Which charge?", "es": "¿Qué cargo?"},
    "dispute.reason": {"en": "What is wrong?", "es": "¿Qué está mal?"},
    "dispute.already": {"en": "Already under review", "es": "Ya está en revisión"},
    "dispute.submit": {"en": "Send my dispute", "es": "Enviar mi reclamo"},
    "dispute.none": {"en": "There are no charges to question.",
                     "es": "No hay cargos para reclamar."},
    "dispute.reason.not_mine": {"en": "This is not my charge", "es": "Este cargo no es mío"},
    "dispute.reason.wrong_amount": {"en": "The amount is wrong", "es": "El monto es incorrecto"},
    "dispute.reason.insurance": {"en": "My insurance should pay this",
                                 "es": "Mi seguro debería pagarlo"},
    "dispute.reason.already_paid": {"en": "I already paid this", "es": "Ya lo pagué"},
    "dispute.reason.not_received": {"en": "I did not receive this service",
                                    "es": "No recibí este servicio"},
    "dispute.reason.other": {"en": "Something else", "es": "Otra cosa"},
    "self.done.dispute": {
        "en": "We received your dispute. We have paused collection on this account while "
        "the billing office reviews it, and they will contact you.",
        "es": "Recibimos su reclamo. Pausamos el cobro de esta cuenta mientras la oficina "
        "de facturación lo revisa, y se comunicarán con usted.",
    },
    # financial help
    "help.intro": {
        "en": "If paying is hard right now, we can help: a discount, a smaller monthly "
        "payment, or a pause. While we look at your request, we will not contact you to "
        "collect and any payment plan is paused.",
        "es": "Si ahora le cuesta pagar, podemos ayudarle: un descuento, un pago mensual "
        "más bajo o una pausa. Mientras revisamos su solicitud, no nos comunicaremos con "
        "usted para cobrar y cualquier plan de pagos queda en pausa.",
    },
    "help.reason": {"en": "What best describes your situation?",
                    "es": "¿Qué describe mejor su situación?"},
    "help.reason.income": {"en": "My income went down", "es": "Mis ingresos bajaron"},
    "help.reason.medical_costs": {"en": "I have other large medical costs",
                                  "es": "Tengo otros gastos médicos grandes"},
    "help.reason.unemployment": {"en": "I lost my job", "es": "Perdí mi empleo"},
    "help.reason.other": {"en": "Something else", "es": "Otra cosa"},
    "help.submit": {"en": "Ask for help", "es": "Pedir ayuda"},
    "self.done.help": {
        "en": "We received your request. Collection is paused while the billing office "
        "reviews it, and they will contact you about the options.",
        "es": "Recibimos su solicitud. El cobro queda en pausa mientras la oficina de "
        "facturación la revisa, y se comunicarán con usted sobre las opciones.",
    },
    # access log
    "log.intro": {
        "en": "Everyone who looked at or changed your billing record, newest first, as our "
        "audit trail recorded it.",
        "es": "Todas las personas que vieron o cambiaron su expediente de facturación, de "
        "lo más reciente a lo más antiguo, según nuestro registro de auditoría.",
    },
    "log.when": {"en": "When", "es": "Cuándo"},
    "log.who": {"en": "Who", "es": "Quién"},
    "log.what": {"en": "What", "es": "Qué"},
    "log.why": {"en": "Why", "es": "Por qué"},
    "log.empty": {"en": "Nothing is recorded yet.", "es": "Todavía no hay registros."},
    "log.who.you": {"en": "You", "es": "Usted"},
    "log.who.staff": {"en": "Billing office staff", "es": "Personal de facturación"},
    "log.who.system": {"en": "Automatic process", "es": "Proceso automático"},
    "log.who.integration": {"en": "Connected software", "es": "Programa conectado"},
    "log.who.portal": {"en": "Portal user", "es": "Usuario del portal"},
    "log.role.owner": {"en": "Administrator", "es": "Administrador"},
    "log.role.billing_manager": {"en": "Billing manager", "es": "Gerente de facturación"},
    "log.role.collector": {"en": "Billing staff", "es": "Personal de cobro"},
    "log.role.compliance_officer": {"en": "Compliance officer",
                                    "es": "Oficial de cumplimiento"},
    "log.role.auditor": {"en": "Auditor", "es": "Auditor"},
    "log.activity.viewed": {"en": "Viewed your record", "es": "Vio su expediente"},
    "log.activity.changed": {"en": "Changed your record", "es": "Cambió su expediente"},
    "log.activity.contacted": {"en": "Contacted you", "es": "Se comunicó con usted"},
    "log.activity.paid": {"en": "Payment or plan activity", "es": "Actividad de pagos o plan"},
    "log.activity.signed_in": {"en": "Signed in to the portal", "es": "Entró al portal"},
    "log.activity.other": {"en": "Other activity", "es": "Otra actividad"},
    "log.denied": {"en": "(refused)", "es": "(rechazado)"},
    # errors (from the services)
    "self.err.generic": {"en": "Please check the form and try again.",
                         "es": "Revise el formulario e inténtelo de nuevo."},
    "self.err.channels": {"en": "Choose among e-mail, text messages and phone calls.",
                          "es": "Elija entre correo, mensajes de texto y llamadas."},
    "self.err.language": {"en": "Choose English or Spanish.", "es": "Elija inglés o español."},
    "self.err.time_pair": {
        "en": "Give both the start and the end of the best time to reach you, or leave both "
        "empty.",
        "es": "Escriba el inicio y el final de la mejor hora para comunicarnos, o deje ambos "
        "vacíos.",
    },
    "self.err.time_format": {"en": "Enter times like 09:00 and 17:00.",
                             "es": "Escriba horas como 09:00 y 17:00."},
    "self.err.time_same": {"en": "The start and the end of the best time must differ.",
                           "es": "El inicio y el final deben ser distintos."},
    "self.err.days": {"en": "Choose days of the week.", "es": "Elija días de la semana."},
    "self.err.all_days": {"en": "Leave at least one day on which we may contact you.",
                          "es": "Deje al menos un día en que podamos comunicarnos."},
    "self.err.no_email": {"en": "We have no e-mail address on file to use.",
                          "es": "No tenemos un correo electrónico registrado."},
    "self.err.no_phone": {"en": "We have no phone number on file to use.",
                          "es": "No tenemos un número de teléfono registrado."},
    "self.err.choose_charge": {"en": "Choose the charge you are questioning.",
                               "es": "Elija el cargo que reclama."},
    "self.err.dispute_reason": {"en": "Choose the reason for your dispute.",
                                "es": "Elija el motivo de su reclamo."},
    "self.err.hardship_reason": {"en": "Choose what best describes your situation.",
                                 "es": "Elija lo que mejor describe su situación."},
}

# The services' BadInput messages (English, PHI-free) -> catalog keys.
ERROR_KEYS: dict[str, str] = {
    "Choose among e-mail, text messages and phone calls.": "self.err.channels",
    "Choose English or Spanish.": "self.err.language",
    "Give both the start and the end of the best time to reach you, or leave both empty.":
        "self.err.time_pair",
    "Enter times like 09:00 and 17:00.": "self.err.time_format",
    "The start and the end of the best time must differ.": "self.err.time_same",
    "Choose days of the week.": "self.err.days",
    "Leave at least one day on which we may contact you.": "self.err.all_days",
    "We have no e-mail address on file to use.": "self.err.no_email",
    "We have no phone number on file to use.": "self.err.no_phone",
    "Choose the reason for your dispute.": "self.err.dispute_reason",
    "Choose what best describes your situation.": "self.err.hardship_reason",
}
