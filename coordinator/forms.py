"""The coordinator's forms (Flask-WTF: each carries its CSRF token).

Every box's text is read by iop.rules.entry, the rules the imports and commands use, so a form
refuses what an import refuses, in the same words. A box keeps the text as typed (a refused form
comes back as the person left it); `value` is what the text means once it is accepted.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, FieldList, Form, FormField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields import Field
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, StopValidation

from iop.clinic import program
from iop.rules import entry
from iop.rules.hours import PlanTerms
from iop.store.models import ROLES

PHASE_ROWS = 6


def _read(box) -> None:
    """Run the box's rule: `value` is what the text means, or the rule's sentence shows beside the box."""
    box.value = None
    if box.rule is None:
        return
    try:
        box.value = box.rule(box.data, box.entry_field)
    except entry.EntryError as exc:
        raise StopValidation(exc.message) from None


class EntryField(StringField):
    """A text box read by one rule of iop.rules.entry (`rule(text, field)`)."""

    def __init__(self, label=None, validators=None, rule=entry.text, field: entry.Field | None = None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.rule, self.entry_field, self.value = rule, field, None

    def pre_validate(self, form):
        _read(self)


class TickedField(Field):
    """Every value sent under the box's name (ticked boxes), read by one rule of iop.rules.entry."""

    def __init__(self, label=None, validators=None, rule=None, field: entry.Field | None = None, **kwargs):
        super().__init__(label, validators, default=(), **kwargs)
        self.rule, self.entry_field, self.value = rule, field, None

    def process_formdata(self, valuelist):
        self.data = list(valuelist)

    def pre_validate(self, form):
        _read(self)


class KeysField(TickedField):
    """Ticked records by their keys (whole numbers); anything else a browser would not send is left out."""

    def process_formdata(self, valuelist):
        self.data = _keys(valuelist)


def _keys(values) -> list[int]:
    """Whole numbers a record key can be (a column's integer), in order."""
    keys = []
    for value in values:
        if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()
                                      and len(value) <= 18):
            keys.append(int(value))
    return keys


class DeskForm(FlaskForm):
    """A coordinator's form: each problem beside its box, and all of them listed above the form."""

    def refused(self, refusal: entry.Refused) -> None:
        """The clinic's refusal (a taken client ID, an overlapping plan): each sentence beside the box it
        is about, the others above the form."""
        for name, sentences in refusal.by_field.items():
            box = self._fields.get(name) if name else None
            if box is None:
                self.form_errors.extend(sentences)
            else:
                box.errors = list(box.errors) + sentences

    @property
    def problems(self) -> list[str]:
        found = [problem for box in self if isinstance(box.errors, list)
                 for problem in box.errors if isinstance(problem, str)]
        return found + list(self.form_errors)


# ---- clients and plans -------------------------------------------------------------------------

class ClientForm(DeskForm):
    client_id = EntryField("Client ID", rule=entry.client_id, field=entry.CLIENT_ID)
    first_name = EntryField("First name", field=entry.FIRST_NAME)
    last_name = EntryField("Last name", field=entry.LAST_NAME)
    status = StringField("Status", default="active")
    groups = KeysField("Groups")

    @classmethod
    def of(cls, client) -> ClientForm:
        return cls(data={"client_id": client.client_id, "first_name": client.first_name,
                         "last_name": client.last_name, "status": client.status,
                         "groups": [g.id for g in client.groups]})

    def client_fields(self) -> program.ClientFields:
        return program.ClientFields(self.client_id.value, self.first_name.value, self.last_name.value,
                                    self.status.data or "", self.groups.data)


class PhaseRow(Form):
    """One row of the plan's phases (a part of the plan form: no token of its own)."""

    first = StringField("From week")
    last = StringField("To week")
    hours = StringField("Hours a week")
    days = StringField("Days a week")

    def typed(self) -> tuple[str, str, str, str]:
        return tuple((box.data or "").strip() for box in (self.first, self.last, self.hours, self.days))


class PlanForm(DeskForm):
    level_of_care = StringField("Level of care")
    start_date = EntryField("Start date", rule=entry.day, field=entry.PLAN_START)
    end_date = EntryField("End date", rule=entry.day, field=entry.PLAN_END)
    weekly_hours = EntryField("Hours a week", rule=entry.hours, field=entry.WEEKLY_HOURS)
    days_per_week = EntryField("Days a week", rule=entry.days_per_week, field=entry.DAYS_PER_WEEK)
    phase = FieldList(FormField(PhaseRow), min_entries=PHASE_ROWS, max_entries=PHASE_ROWS)
    groups = KeysField("Groups")
    phases: tuple | list = ()  # the filled phase rows, once valid
    phase_problems: tuple | list = ()

    @classmethod
    def of(cls, plan, client) -> PlanForm:
        return cls(data={
            "level_of_care": plan.level_of_care, "start_date": plan.start_date.isoformat(),
            "end_date": plan.end_date.isoformat() if plan.end_date else "",
            "weekly_hours": entry.hours_as_typed(plan.weekly_minutes), "days_per_week": str(plan.days_per_week),
            "phase": [{"first": str(p.first_week), "last": str(p.last_week),
                       "hours": entry.hours_as_typed(p.weekly_minutes), "days": str(p.days_per_week)}
                      for p in plan.phases],
            "groups": [g.id for g in client.groups]})

    @classmethod
    def fresh(cls, client, today) -> PlanForm:
        return cls(data={"level_of_care": "2.1", "start_date": today.isoformat(), "weekly_hours": "9",
                         "days_per_week": "3", "groups": [g.id for g in client.groups]})

    def validate(self, extra_validators=None) -> bool:
        fine = super().validate(extra_validators)
        self.phases, self.phase_problems = [], []
        filled = [row.form.typed() for row in self.phase if any(row.form.typed())]
        for number, typed in enumerate(filled, 1):
            try:
                self.phases.append(entry.phase(*typed, entry.Field(f"phase {number}", f"Phase {number}")))
            except entry.EntryError as exc:
                self.phase_problems.append(exc.message)
        return fine and not self.phase_problems

    @property
    def problems(self) -> list[str]:
        return super().problems + list(self.phase_problems)

    def terms(self) -> PlanTerms:
        """The plan as the form says it (once valid)."""
        return PlanTerms(start_date=self.start_date.value, end_date=self.end_date.value,
                         weekly_minutes=self.weekly_hours.value, days_per_week=self.days_per_week.value,
                         level_of_care=(self.level_of_care.data or "").strip(), phases=tuple(self.phases))


class AuthorizationForm(DeskForm):
    """A payer's authorization on the client page; the values are read by iop.rules.entry, as the import's."""

    payer = EntryField("Payer", field=entry.PAYER)
    number = EntryField("Authorization number", rule=entry.authorization_number, field=entry.AUTHORIZATION_NUMBER)
    service = EntryField("Service code", rule=entry.service_code, field=entry.SERVICE)
    unit = EntryField("Unit", rule=entry.unit, field=entry.UNIT)
    units = EntryField("Units authorized", rule=entry.units, field=entry.UNITS)
    start = EntryField("Start date", rule=entry.day, field=entry.AUTHORIZATION_START)
    end = EntryField("End date (included)", rule=entry.day, field=entry.AUTHORIZATION_END)
    note = EntryField("Note", field=entry.AUTHORIZATION_NOTE)

    @classmethod
    def of(cls, record) -> AuthorizationForm:
        return cls(data={"payer": record.payer, "number": record.number, "service": record.service,
                         "unit": record.unit, "units": str(record.units), "start": record.start_date.isoformat(),
                         "end": record.end_date.isoformat(), "note": record.note})

    @classmethod
    def fresh(cls, today) -> AuthorizationForm:
        return cls(data={"service": "H0015", "unit": "day", "start": today.isoformat()})

    def validate(self, extra_validators=None) -> bool:
        fine = super().validate(extra_validators)
        if fine:
            try:
                entry.date_range(self.start.value, self.end.value)
            except entry.EntryError as exc:
                self.end.errors = list(self.end.errors) + [exc.message]
                return False
        return fine

    def fields(self):
        from iop.clinic.authorizations import AuthorizationFields

        return AuthorizationFields(payer=self.payer.value, number=self.number.value, service=self.service.value,
                                   unit=self.unit.value, units=self.units.value, start=self.start.value,
                                   end=self.end.value, note=self.note.value or "")


class UtilizationForm(FlaskForm):
    """The utilization page's range and filters (a GET form: no token)."""

    class Meta:
        csrf = False

    first = EntryField("From", rule=entry.day, field=entry.Field("first", "The first date", needed=False))
    last = EntryField("To", rule=entry.day, field=entry.Field("last", "The last date", needed=False))
    payer = StringField("Payer")
    status = StringField("Status")

    @property
    def problems(self) -> list[str]:
        return [problem for box in self for problem in box.errors if isinstance(problem, str)]


# ---- groups and levels -----------------------------------------------------------------------------

class GroupForm(DeskForm):
    code = EntryField("Code", rule=entry.group_code, field=entry.GROUP_CODE)
    name = EntryField("Name", field=entry.GROUP_NAME)
    track = StringField("Curriculum track")
    room = EntryField("Room", field=entry.ROOM)
    weekdays = TickedField("Meets on", rule=entry.weekdays, field=entry.WEEKDAYS)
    start = EntryField("Starts", rule=entry.clock_time, field=entry.START)
    end = EntryField("Ends", rule=entry.clock_time, field=entry.END)
    facilitator_id = StringField("Facilitator")
    active = BooleanField("Running")

    @classmethod
    def of(cls, group) -> GroupForm:
        return cls(data={"code": group.code, "name": group.name, "track": group.track, "room": group.room,
                         "weekdays": group.weekdays.split(), "start": f"{group.start:%H:%M}",
                         "end": f"{group.end:%H:%M}", "facilitator_id": str(group.facilitator_id or ""),
                         "active": group.active})

    @classmethod
    def fresh(cls, track: str) -> GroupForm:
        return cls(data={"track": track, "weekdays": ["Mon", "Wed", "Fri"], "start": "09:00", "end": "12:00",
                         "active": True})

    @property
    def facilitator_key(self) -> int | None:
        found = _keys([self.facilitator_id.data])
        return found[0] if found else None

    def group_fields(self) -> program.GroupFields:
        return program.GroupFields(
            code=self.code.value, name=self.name.value, track=(self.track.data or "").strip(), room=self.room.value,
            weekdays=self.weekdays.value, start=self.start.value, end=self.end.value,
            facilitator_id=self.facilitator_key, active=self.active.data)


WEEKLY_MINIMUM = entry.Field("minimum", "The weekly minimum", missing="The weekly minimum is needed (0 for none).")
WEEKLY_MAXIMUM = entry.Field("maximum", "The weekly maximum", needed=False)


class LevelForm(DeskForm):
    existing = HiddenField()
    code = EntryField("Code", rule=entry.level_code, field=entry.LEVEL_CODE)
    name = EntryField("Name", field=entry.LEVEL_NAME)
    minimum = EntryField("Weekly minimum (hours)", rule=entry.hours, field=WEEKLY_MINIMUM)
    maximum = EntryField("Weekly maximum (hours, optional)", rule=entry.hours, field=WEEKLY_MAXIMUM)

    @classmethod
    def of(cls, level) -> LevelForm:
        maximum = level.weekly_maximum_minutes
        return cls(data={"existing": level.code, "code": level.code, "name": level.name,
                         "minimum": entry.hours_as_typed(level.weekly_minimum_minutes),
                         "maximum": "" if maximum is None else entry.hours_as_typed(maximum)})


# ---- kiosks and cards ----------------------------------------------------------------------------

class KioskNameForm(DeskForm):
    """Set up a tablet, or rename one."""

    name = EntryField("Kiosk name", field=entry.KIOSK_NAME)


class ChimeForm(FlaskForm):
    chime = StringField("Chime")

    @property
    def on(self) -> bool:
        return self.chime.data == "on"


class CardsForm(FlaskForm):
    """The ticked clients' cards to print (none ticked: every active client)."""

    client_id = TickedField("Clients")

    def chosen(self, most: int = 2000) -> list[str]:
        return [value for value in self.client_id.data if value][:most]


# ---- exports and imports -------------------------------------------------------------------------

class ExportForm(DeskForm):
    first = EntryField("From", rule=entry.day, field=entry.Field("first", "The first date"))
    last = EntryField("To", rule=entry.day, field=entry.Field("last", "The last date"))
    format = StringField("Format", default="csv")


class UtilizationExportForm(DeskForm):
    on = EntryField("On", rule=entry.day, field=entry.Field("on", "The date"))
    format = StringField("Format", default="csv")


class ImportForm(FlaskForm):
    file = FileField("File (.csv)")

    @property
    def chosen(self):
        """The uploaded file, or None when none was chosen."""
        upload = self.file.data
        return upload if upload is not None and getattr(upload, "filename", "") else None


# ---- the Staff page (admins): the rules live in iop.clinic.staff; these only gather what was typed ----

ROLE_CHOICES = [SelectChoice(role, role.title()) for role in ROLES]


class NewPasswordFields:
    """A new password typed twice (the same on every form that sets one)."""

    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    again = PasswordField("Password again", validators=[DataRequired(), Length(max=256)])

    def passwords_match(self) -> bool:
        return self.password.data == self.again.data


class AddStaffForm(FlaskForm, NewPasswordFields):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    display_name = StringField("Full name (signs group notes)", validators=[DataRequired(), Length(max=200)])
    credentials = StringField("Credentials (e.g. LCSW, CADC)", validators=[Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="facilitator")


class DetailsForm(FlaskForm):
    display_name = StringField("Full name (signs group notes)", validators=[DataRequired(), Length(max=200)])
    credentials = StringField("Credentials (e.g. LCSW, CADC)", validators=[Length(max=200)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ResetPasswordForm(FlaskForm, NewPasswordFields):
    pass
