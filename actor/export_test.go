package actor

// RaceEnabled lets the black-box tests skip allocation pins under -race.
const RaceEnabled = raceEnabled
