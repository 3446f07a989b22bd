-- Person x month GP attendance panel relative to each person's index date.
--
-- Inputs (tables or views):
--   appointments(patient_id, appointment_date, staff_role, mode, status, slot_category)
--   cohort(patient_id, index_date, treated)
--   months(months_since_index)            -- the window, e.g. -12 .. 11
-- Placeholders filled by spimpact.attendance: {first_month}, {last_month} (integers),
-- {observed_from}, {observed_until} (DATE literals; the extract covers
-- observed_from <= date < observed_until).
-- Plain SQL (EXTRACT, LEAST, last_day, CASE), so it runs on Spark SQL as well as DuckDB.
--
-- Month k of a person runs from the index day of calendar month (index month + k) up to
-- the day before the index day of the next one; in a month shorter than the index day it
-- starts on the month's last day (as add_months clamps). Month 0 starts on the index date,
-- month -1 is the month before it. A person-month is kept only when the whole month lies
-- inside the period the appointment extract covers, so a month that was not observed is
-- never counted as a month without appointments.
WITH people AS (
    SELECT
        patient_id,
        treated,
        index_date,
        EXTRACT(YEAR FROM index_date) * 12 + EXTRACT(MONTH FROM index_date) - 1
            AS index_calendar_month,
        -- month of the first day observed; the month is whole only if it starts that day
        (EXTRACT(YEAR FROM {observed_from}) * 12 + EXTRACT(MONTH FROM {observed_from}))
        - (EXTRACT(YEAR FROM index_date) * 12 + EXTRACT(MONTH FROM index_date))
        - CASE
            WHEN EXTRACT(DAY FROM {observed_from}) < LEAST(
                EXTRACT(DAY FROM index_date), EXTRACT(DAY FROM last_day({observed_from}))
            ) THEN 1
            ELSE 0
        END
        + CASE
            WHEN EXTRACT(DAY FROM {observed_from}) = LEAST(
                EXTRACT(DAY FROM index_date), EXTRACT(DAY FROM last_day({observed_from}))
            ) THEN 0
            ELSE 1
        END AS first_whole_month,
        -- the month holding observed_until is not whole; the one before it is
        (EXTRACT(YEAR FROM {observed_until}) * 12 + EXTRACT(MONTH FROM {observed_until}))
        - (EXTRACT(YEAR FROM index_date) * 12 + EXTRACT(MONTH FROM index_date))
        - CASE
            WHEN EXTRACT(DAY FROM {observed_until}) < LEAST(
                EXTRACT(DAY FROM index_date), EXTRACT(DAY FROM last_day({observed_until}))
            ) THEN 1
            ELSE 0
        END
        - 1 AS last_whole_month
    FROM cohort
),

events AS (
    SELECT
        a.patient_id,
        (EXTRACT(YEAR FROM a.appointment_date) * 12 + EXTRACT(MONTH FROM a.appointment_date))
        - (EXTRACT(YEAR FROM c.index_date) * 12 + EXTRACT(MONTH FROM c.index_date))
        - CASE
            WHEN EXTRACT(DAY FROM a.appointment_date) < LEAST(
                EXTRACT(DAY FROM c.index_date), EXTRACT(DAY FROM last_day(a.appointment_date))
            ) THEN 1
            ELSE 0
        END AS months_since_index,
        a.staff_role,
        a.mode
    FROM appointments AS a
    INNER JOIN cohort AS c ON a.patient_id = c.patient_id
    WHERE a.status = 'attended'
        -- clinical staff only; the scheme's own link-worker contacts are the intervention,
        -- not an outcome (GPAD slot category "Social Prescribing Service" or the SPLW role)
        AND a.staff_role IN ('gp', 'nurse', 'other_clinical')
        AND COALESCE(a.slot_category, '') <> 'Social Prescribing Service'
),

counts AS (
    SELECT
        patient_id,
        months_since_index,
        SUM(CASE WHEN staff_role = 'gp' THEN 1 ELSE 0 END) AS n_gp,
        COUNT(*) AS n_clinical,
        SUM(CASE WHEN mode IN ('face_to_face', 'home_visit') THEN 1 ELSE 0 END)
            AS n_clinical_face_to_face,
        SUM(CASE WHEN mode IN ('telephone', 'video', 'online') THEN 1 ELSE 0 END)
            AS n_clinical_remote
    FROM events
    WHERE months_since_index BETWEEN {first_month} AND {last_month}
    GROUP BY patient_id, months_since_index
),

grid AS (
    SELECT
        p.patient_id,
        p.treated,
        p.index_date,
        m.months_since_index,
        p.index_calendar_month + m.months_since_index AS calendar_month
    FROM people AS p
    INNER JOIN months AS m
        ON m.months_since_index BETWEEN p.first_whole_month AND p.last_whole_month
)

SELECT
    g.patient_id,
    g.treated,
    g.index_date,
    g.months_since_index,
    CASE WHEN g.months_since_index < 0 THEN 0 ELSE 1 END AS post,
    g.calendar_month,
    COALESCE(k.n_gp, 0) AS n_gp,
    COALESCE(k.n_clinical, 0) AS n_clinical,
    COALESCE(k.n_clinical_face_to_face, 0) AS n_clinical_face_to_face,
    COALESCE(k.n_clinical_remote, 0) AS n_clinical_remote
FROM grid AS g
LEFT JOIN counts AS k
    ON g.patient_id = k.patient_id AND g.months_since_index = k.months_since_index
