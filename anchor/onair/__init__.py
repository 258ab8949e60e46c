"""On air: the timetable fires each planned airing LEAD early; the station airs it on its channel; the airing
claims its row, cues up, starts at the instant and logs its outcome; programs are made ready ahead."""
