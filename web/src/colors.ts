// One color per person id, the same in the live view, the person's card and the history; and one per angle.

const kPersonColors = ['#4fc3f7', '#ffb74d', '#81c784', '#f06292', '#ba68c8', '#fff176', '#4db6ac', '#e57373'];
const kAngleColors = ['#4fc3f7', '#ffb74d', '#81c784', '#f06292', '#ba68c8', '#a1887f'];

export function personColor(personId: number): string {
  return kPersonColors[Math.abs(personId) % kPersonColors.length] ?? '#ffffff';
}

export function angleColor(index: number): string {
  return kAngleColors[index % kAngleColors.length] ?? '#ffffff';
}
