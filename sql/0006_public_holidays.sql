-- 0006_public_holidays: a location may close on the public holidays of the place it stands.
--
-- Issue 10: the demo's holidays were a hard-coded list of dates that ran out. Which days are public
-- holidays now comes from the `holidays` package (db/desk/public_holidays.py), by the location's
-- own address: its country, and its region (state, province) for the regional ones. Off by
-- default, so no existing location starts closing on days it used to open. The business's own
-- closures stay in business_hour_exceptions, and an exception on a holiday wins: that is how a
-- business opens (or keeps special hours) on a public holiday.

alter table locations
    add column public_holidays text not null default 'none',
    add constraint locations_public_holidays_check
        check (public_holidays in ('none', 'national', 'regional')),
    add constraint locations_public_holidays_region_check
        check (public_holidays <> 'regional' or region is not null);

comment on column locations.public_holidays is
    'Which public holidays close this location: none; national (its country''s, by the address''s '
    'country); regional (its country''s and its region''s, e.g. US-NY adds Lincoln''s Birthday). '
    'A business_hour_exceptions row on the date overrides the holiday.';

comment on table business_hour_exceptions is
    'Dated exceptions in local time. Any row for a date replaces that date''s weekly hours and a '
    'public holiday on it (locations.public_holidays): a row without times means closed all day, '
    'rows with times are the special hours (open on a holiday, say).';
